"""The task travels: ensembles, submissions, scores and metrics of a competition that is not
Conser-vision (other classes, a label column, `image_id`, two classes scored by ROC AUC)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.special import softmax

from kaggle_style.constants import ENSEMBLE_FILE, OOF_FILE, TEST_FILE
from kaggle_style.ensemble.config import EnsembleConfig
from kaggle_style.ensemble.run import ensemble
from kaggle_style.errors import UserError
from kaggle_style.metrics import METRICS, score
from kaggle_style.prediction_files import make_frame, write_predictions
from kaggle_style.submission import (
    SubmissionError,
    check_clip,
    check_submission,
    make_submission,
    score_predictions,
)
from kaggle_style.task import CONSERVISION_CLASSES, TaskError, parse_task, write_task

PETS = ("cat", "dog")


def pets_task(**changes: object):
    data = {
        "name": "pets",
        "tables": {"train": "train.csv", "submission_format": "sample_submission.csv"},
        "id_column": "image_id",
        "images": {"train_pattern": "train/{id}.png", "test_pattern": "test/{id}.png"},
        "labels": {"kind": "column", "column": "label"},
        "classes": list(PETS),
        "group_column": "location",
        "submission": {"kind": "label", "label_column": "label"},
    }
    data.update(changes)
    return parse_task(data, "pets.yaml")


def write_runs(root: Path, classes: tuple[str, ...], n: int = 120, n_test: int = 20) -> dict:
    """Two runs' OOF and test files over `classes`, and the train.csv of their labels."""
    rng = np.random.default_rng(0)
    k = len(classes)
    y = rng.integers(0, k, n)
    ids = np.array([f"im{i:04d}" for i in range(n)])
    test_ids = np.array([f"te{i:04d}" for i in range(n_test)])
    runs = []
    for name, noise in (("a", 1.0), ("b", 1.5)):
        folder = root / "runs" / name
        oof = softmax(2 * np.eye(k)[y] + noise * rng.normal(size=(n, k)), axis=1)
        test = softmax(rng.normal(size=(n_test, k)), axis=1)
        write_predictions(
            folder / OOF_FILE, make_frame(ids, oof, np.arange(n) % 4, classes=classes)
        )
        write_predictions(folder / TEST_FILE, make_frame(test_ids, test, classes=classes))
        runs.append(str(folder))
    labels = pd.DataFrame(
        {
            "image_id": ids,
            "label": np.asarray(classes)[y],
            "location": [f"L{i % 6}" for i in range(n)],
        }
    )
    labels.to_csv(root / "train.csv", index=False)
    return {"runs": runs, "ids": ids, "test_ids": test_ids, "y": y}


def pets_config(root: Path, runs: list[str], task_file: Path, **kw: object) -> EnsembleConfig:
    return EnsembleConfig(
        runs=runs,
        data=str(root),
        labels=str(root / "train.csv"),
        out=str(root / "runs" / "ens"),
        stacking=False,
        site_adapt="off",
        n_starts=1,
        task=str(task_file),
        **kw,
    )


def test_ensemble_of_another_task_records_it_and_reports_its_metric(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    task = pets_task(metric="roc_auc")
    task_file = write_task(tmp_path / "pets.yaml", task)
    runs = write_runs(tmp_path, PETS)["runs"]
    ensemble(pets_config(tmp_path, runs, task_file))
    assert "task pets has no camera_trap part" in capsys.readouterr().out
    report = json.loads((tmp_path / "runs/ens" / ENSEMBLE_FILE).read_text())
    assert report["task"] == "pets" and report["classes"] == list(PETS)
    assert report["metric"]["name"] == "roc_auc"
    assert 0.5 < report["metric"]["nested"] <= 1.0
    config = yaml.safe_load((tmp_path / "runs/ens/config.yaml").read_text())
    assert config["task"] == "pets" and config["classes"] == list(PETS)
    oof = pd.read_csv(tmp_path / "runs/ens" / OOF_FILE)
    assert list(oof.columns) == ["id", *PETS, "fold"]


def test_ensemble_refuses_runs_of_another_class_list_in_one_line(tmp_path: Path) -> None:
    task_file = write_task(tmp_path / "pets.yaml", pets_task())
    runs = write_runs(tmp_path, CONSERVISION_CLASSES)["runs"]
    with pytest.raises(TaskError, match="are not task pets's") as err:
        ensemble(pets_config(tmp_path, runs, task_file))
    assert "\n" not in str(err.value)
    assert not (tmp_path / "runs/ens").exists()


def test_ensemble_refuses_an_ensemble_made_for_another_task(tmp_path: Path) -> None:
    task_file = write_task(tmp_path / "pets.yaml", pets_task())
    runs = write_runs(tmp_path, PETS)["runs"]
    ensemble(pets_config(tmp_path, runs, task_file))
    other = pets_task(name="animals")
    other_file = write_task(tmp_path / "animals.yaml", other)
    cfg = pets_config(tmp_path, [str(tmp_path / "runs/ens")], other_file)
    cfg.out = str(tmp_path / "runs" / "ens2")
    with pytest.raises(TaskError, match="made for task pets, not animals"):
        ensemble(cfg)


def test_label_submission_is_the_argmax_in_the_format_order_and_scores_by_accuracy(
    tmp_path: Path,
) -> None:
    task = pets_task()
    preds = make_frame(
        ["b", "a", "c"], np.array([[0.2, 0.8], [0.9, 0.1], [0.4, 0.6]]), classes=PETS
    )
    preds.to_csv(tmp_path / "test.csv", index=False)
    pd.DataFrame({"image_id": ["a", "b", "c"], "label": "cat"}).to_csv(
        tmp_path / "sample_submission.csv", index=False
    )
    out = make_submission(
        tmp_path / "test.csv", tmp_path / "sample_submission.csv", tmp_path / "sub.csv", task=task
    )
    sub = pd.read_csv(out)
    assert list(sub.columns) == ["image_id", "label"]
    assert sub["label"].tolist() == ["cat", "dog", "dog"]
    labels = pd.DataFrame({"image_id": ["a", "b", "c"], "label": ["cat", "dog", "cat"]})
    labels.to_csv(tmp_path / "truth.csv", index=False)
    result = score_predictions(out, tmp_path / "truth.csv", task)
    assert result["metric"] == "accuracy" and result["accuracy"] == pytest.approx(2 / 3)


def test_validate_names_labels_that_are_not_classes(tmp_path: Path) -> None:
    task = pets_task()
    pd.DataFrame({"image_id": ["a", "b"], "label": "cat"}).to_csv(tmp_path / "fmt.csv", index=False)
    pd.DataFrame({"image_id": ["a", "b"], "label": ["cat", "wolf"]}).to_csv(
        tmp_path / "sub.csv", index=False
    )
    problems, _ = check_submission(tmp_path / "sub.csv", tmp_path / "fmt.csv", task=task)
    assert len(problems) == 1 and "1 label(s) in column 'label' are not classes" in problems[0]


def test_probability_submission_keeps_the_formats_id_column(tmp_path: Path) -> None:
    task = pets_task(submission={"kind": "probabilities"})
    make_frame(["x", "y"], np.array([[0.3, 0.7], [0.6, 0.4]]), classes=PETS).to_csv(
        tmp_path / "test.csv", index=False
    )
    pd.DataFrame({"image_id": ["y", "x"], "dog": 0.5, "cat": 0.5}).to_csv(
        tmp_path / "fmt.csv", index=False
    )
    out = make_submission(
        tmp_path / "test.csv", tmp_path / "fmt.csv", tmp_path / "s.csv", task=task
    )
    sub = pd.read_csv(out)
    assert list(sub.columns) == ["image_id", "dog", "cat"]
    assert sub["image_id"].tolist() == ["y", "x"]
    assert sub["dog"].tolist() == pytest.approx([0.4, 0.7])


def test_clip_bound_follows_the_number_of_classes() -> None:
    assert check_clip(0.4, 2) == 0.4
    with pytest.raises(SubmissionError, match=r"below 0\.333333 \(1/3"):
        check_clip(0.4, 3)


def test_submit_refuses_predictions_of_other_classes(tmp_path: Path) -> None:
    task = pets_task(submission={"kind": "probabilities"})
    make_frame(["x"], np.array([[0.3, 0.7]]), classes=("fox", "owl")).to_csv(
        tmp_path / "test.csv", index=False
    )
    pd.DataFrame({"image_id": ["x"], "cat": 0.5, "dog": 0.5}).to_csv(
        tmp_path / "fmt.csv", index=False
    )
    with pytest.raises(UserError, match="classes fox, owl are not task pets's"):
        make_submission(tmp_path / "test.csv", tmp_path / "fmt.csv", tmp_path / "s.csv", task=task)
    assert not (tmp_path / "s.csv").exists()


def test_metric_registry_scores_by_name() -> None:
    y = np.array([0, 0, 1, 1])
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.45, 0.55], [0.2, 0.8]])
    assert METRICS["roc_auc"](y, probs) == 1.0
    assert METRICS["accuracy"](y, probs) == 1.0
    assert METRICS["macro_f1"](y, probs[::-1]) == 0.0
    assert METRICS["roc_auc"].better(0.9, 0.8) and METRICS["log_loss"].better(0.1, 0.2)
    assert score(y, probs, PETS, "roc_auc")["roc_auc"] == 1.0
