"""Whole pipelines on four competition layouts, each with its task file from `task infer`:
folds -> train (timm's test_resnet, 1 epoch) -> ensemble -> submit -> validate -> score.

- `drivendata`: the four DrivenData tables, one-hot labels, a probability submission;
- `label`: Kaggle's train.csv with a label column, a label submission scored by accuracy;
- `pngs`: Kaggle's layout with `image_id`, `.png` files in sub-folders, probabilities;
- `binary`: two classes scored by ROC AUC.

One trained tiny run per layout is shared by the session's tests; every stage is called
in-process through `kaggle_style.cli.main`, as a user's command line would run it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from kaggle_style.cli import main
from kaggle_style.demo.generator import generate_demo_data
from kaggle_style.demo.kaggle_layout import KaggleDemoConfig, generate_kaggle_demo
from kaggle_style.task import Task, read_task

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "configs" / "tiny-cpu.yaml"
KAGGLE_TINY = {"n_train": 42, "n_test": 10, "width": 48, "height": 36, "n_train_groups": 6}
LAYOUTS = ("drivendata", "label", "pngs", "binary")
METRIC = {"drivendata": "log_loss", "label": "accuracy", "pngs": "log_loss", "binary": "roc_auc"}


@dataclass(frozen=True)
class Pipeline:
    """One layout's data, task file and the files its stages wrote."""

    data: Path
    task_file: Path
    task: Task
    work: Path
    folds: Path
    run: Path
    ensemble: Path
    submission: Path
    score: dict

    @property
    def format_file(self) -> Path:
        return self.data / self.task.tables.submission_format

    @property
    def labels_file(self) -> Path:
        return self.data / (self.task.tables.labels or self.task.tables.train)


def ok(*argv: str) -> None:
    assert main([str(a) for a in argv]) == 0, f"kaggle-style {' '.join(map(str, argv))} failed"


def _generate(layout: str, folder: Path) -> Path:
    if layout == "drivendata":
        return generate_demo_data(folder, seed=3, n_train=48, n_test=12, width=64, height=36)
    options = {
        "label": {},
        "pngs": {"suffix": ".png", "submission": "probabilities"},
        "binary": {"classes": "animal", "submission": "probabilities"},
    }[layout]
    cfg = KaggleDemoConfig(out=str(folder), n_test_groups=2, **KAGGLE_TINY, **options)
    return generate_kaggle_demo(cfg)


def build_pipeline(layout: str, root: Path, capsys: pytest.CaptureFixture[str] | None) -> Pipeline:
    data = _generate(layout, root / "data")
    task_file = root / "tasks" / f"{layout}.yaml"
    ok("task", "infer", data, "--out", task_file)
    if layout == "binary":  # what infer cannot know: the competition scores by ROC AUC
        spec = yaml.safe_load(task_file.read_text())
        task_file.write_text(yaml.safe_dump({**spec, "metric": "roc_auc"}, sort_keys=False))
    task = read_task(task_file)
    work = root / "work"
    folds, run, ens = work / "folds.csv", work / "runs" / "tiny", work / "runs" / "ensemble"
    submission = work / "submission.csv"
    t = ("--task", task_file)
    ok("folds", "--data", data, "--out", folds, "--n-splits", 3, "--seed", 0, *t)
    ok(
        "train", "--config", RECIPE, "--name", "tiny", "--data", data, "--folds-file", folds,
        "--runs-dir", work / "runs", "--quiet", "--set", f"cache_dir={work / 'cache'}", *t,
    )  # fmt: skip
    ok("ensemble", run, "--data", data, "--out", ens, *t)
    fmt = data / task.tables.submission_format
    ok("submit", "--predictions", ens / "test.csv", "--format", fmt, "--out", submission, *t)
    ok("validate", submission, "--format", fmt, *t)
    if capsys is not None:
        capsys.readouterr()
    labels = data / (task.tables.labels or task.tables.train)
    ok("score", ens / "oof.csv", "--labels", labels, "--json", *t)
    score = json.loads(capsys.readouterr().out.strip().splitlines()[-1]) if capsys else {}
    return Pipeline(data, task_file, task, work, folds, run, ens, submission, score)


@pytest.fixture(scope="session")
def pipelines(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Pipeline]:
    """Each layout built once, on first use, and shared."""
    return {}


@pytest.fixture
def pipeline_of(
    pipelines: dict[str, Pipeline],
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
):
    def get(layout: str) -> Pipeline:
        if layout not in pipelines:
            root = tmp_path_factory.mktemp(f"layout_{layout}")
            pipelines[layout] = build_pipeline(layout, root, capsys)
        return pipelines[layout]

    return get


@pytest.mark.heavy
@pytest.mark.parametrize("layout", LAYOUTS)
def test_each_layout_runs_from_folds_to_a_valid_submission_scored_by_its_metric(
    layout: str, pipeline_of
) -> None:
    p = pipeline_of(layout)
    fmt = pd.read_csv(p.format_file, dtype=str, keep_default_na=False)
    sub = pd.read_csv(p.submission, dtype=str, keep_default_na=False)
    assert list(sub.columns) == list(fmt.columns)  # the format's own names and order
    assert list(sub[p.task.id_column]) == list(fmt[p.task.id_column])  # its id order
    if p.task.submission.kind == "label":
        assert set(sub[p.task.submission.label_column]) <= set(p.task.classes)
    else:
        probs = sub[list(p.task.classes)].astype(float).to_numpy()
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    assert METRIC[layout] in json.dumps(p.score)
    assert p.task.score_metric == METRIC[layout]


@pytest.mark.heavy
def test_every_prediction_file_carries_the_tasks_classes_in_order(pipeline_of) -> None:
    p = pipeline_of("label")
    for path in (p.run / "oof.csv", p.run / "test.csv", p.ensemble / "test.csv"):
        columns = list(pd.read_csv(path, nrows=0).columns)
        assert [c for c in columns if c in p.task.classes] == list(p.task.classes), path


@pytest.mark.heavy
def test_a_label_submission_holds_the_argmax_of_the_ensembles_probabilities(pipeline_of) -> None:
    p = pipeline_of("label")
    probs = pd.read_csv(p.ensemble / "test.csv", dtype={"id": str})
    sub = pd.read_csv(p.submission, dtype=str)
    top = np.array(p.task.classes)[probs[list(p.task.classes)].to_numpy().argmax(axis=1)]
    expected = dict(zip(probs["id"], top, strict=True))
    got = dict(zip(sub[p.task.id_column], sub[p.task.submission.label_column], strict=True))
    assert got == expected


@pytest.mark.heavy
def test_predict_on_a_kaggle_task_writes_its_classes(pipeline_of, tmp_path: Path) -> None:
    p = pipeline_of("pngs")
    out = tmp_path / "predictions.csv"
    images = p.data / "test_images"
    ok("predict", "--images", images, "--run", p.run, "--out", out, "--site-from-folder", "--quiet",
       "--task", p.task_file)  # fmt: skip
    frame = pd.read_csv(out)
    assert len(frame) == len(list(images.rglob("*.png")))
    assert [c for c in frame.columns if c in p.task.classes] == list(p.task.classes)
    probs = frame[list(p.task.classes)].to_numpy()
    assert list(frame["top_class"]) == [p.task.classes[i] for i in probs.argmax(axis=1)]


@pytest.mark.heavy
def test_lb_check_scores_a_kaggle_task_on_held_out_cameras(
    pipeline_of, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = pipeline_of("label")
    capsys.readouterr()
    ok(
        "lb-check", "--config", RECIPE, "--data", p.data, "--work", tmp_path / "lb", "--n-splits",
        3, "--share", 0.3, "--set", f"cache_dir={tmp_path / 'cache'}", "--task", p.task_file,
    )  # fmt: skip
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["held_out_sites"] >= 1


@pytest.mark.heavy
def test_ensemble_refuses_runs_of_another_task_in_one_line(
    pipeline_of, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    label, pngs = pipeline_of("label"), pipeline_of("pngs")
    out = tmp_path / "mixed"
    capsys.readouterr()
    mixed = [str(label.run), str(pngs.run), "--task", str(label.task_file)]
    code = main(["ensemble", *mixed, "--data", str(label.data), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "pngs" in err
    assert not out.exists()


@pytest.mark.heavy
def test_ensemble_refuses_a_run_of_another_task_than_its_task_flag(
    pipeline_of, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    label, binary = pipeline_of("label"), pipeline_of("binary")
    out = tmp_path / "other"
    capsys.readouterr()
    other = [str(binary.run), "--task", str(label.task_file)]
    code = main(["ensemble", *other, "--data", str(binary.data), "--out", str(out)])
    assert code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not out.exists()
