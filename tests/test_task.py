"""The task file: one model of a competition, unknown keys and impossible combinations refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kaggle_style.task import (
    CONSERVISION_CLASSES,
    TaskError,
    conservision,
    load_task,
    parse_task,
    read_task,
    recorded_task,
    task_record_path,
    write_task,
)

REPO = Path(__file__).resolve().parents[1]


def kaggle_task(**changes: object) -> dict:
    data = {
        "name": "leaves",
        "tables": {"train": "train.csv", "submission_format": "sample_submission.csv"},
        "id_column": "image_id",
        "images": {"train_pattern": "train_images/**/{id}.png", "test_pattern": "test/{id}.png"},
        "labels": {"kind": "column", "column": "label"},
        "classes": ["healthy", "rust", "scab"],
        "group_column": None,
        "submission": {"kind": "label", "label_column": "label"},
    }
    data.update(changes)
    return data


def write(tmp_path: Path, data: dict, name: str = "leaves") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_conservision_file_says_what_the_builtin_says() -> None:
    assert read_task(REPO / "configs/tasks/conservision.yaml") == conservision()
    assert conservision().classes == CONSERVISION_CLASSES


def test_a_name_is_looked_up_under_configs_tasks(tmp_path: Path) -> None:
    (tmp_path / "configs/tasks").mkdir(parents=True)
    write(tmp_path / "configs/tasks", kaggle_task())
    assert load_task("leaves", root=tmp_path).classes == ("healthy", "rust", "scab")


def test_the_default_is_conservision_even_without_a_configs_folder(tmp_path: Path) -> None:
    assert load_task(None, root=tmp_path) == conservision()


def test_label_submissions_default_to_accuracy_and_probabilities_to_log_loss() -> None:
    assert parse_task(kaggle_task(), "t").score_metric == "accuracy"
    probs = kaggle_task(submission={"kind": "probabilities"})
    assert parse_task(probs, "t").score_metric == "log_loss"


def test_numeric_class_names_become_strings() -> None:
    assert parse_task(kaggle_task(classes=[0, 1]), "t").classes == ("0", "1")


def test_unknown_key_is_one_line_naming_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, {**kaggle_task(), "colour": "red"})
    with pytest.raises(TaskError, match=r"leaves\.yaml: unknown key colour") as err:
        read_task(path)
    assert "\n" not in str(err.value)


def test_unknown_nested_key_names_its_path(tmp_path: Path) -> None:
    path = write(tmp_path, kaggle_task(images={"column": "path", "folder": "x"}))
    with pytest.raises(TaskError, match=r"unknown key images\.folder"):
        read_task(path)


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"metric": "roc_auc"}, "roc_auc needs exactly 2 classes"),
        ({"labels": {"kind": "column"}}, "kind column needs labels.column"),
        ({"images": {"column": "path", "train_pattern": "a/{id}.png"}}, "not both"),
        ({"images": {}}, "give column"),
        ({"images": {"train_pattern": "a/x.png", "test_pattern": "b/{id}.png"}}, "no {id}"),
        ({"submission": {"kind": "label"}}, "needs submission.label_column"),
        ({"metric": "log_loss"}, "log_loss needs probabilities"),
        ({"classes": ["a", "a"]}, "listed twice"),
        (
            {
                "images": {"column": "path"},
                "tables": {"train": "t.csv", "submission_format": "s.csv"},
            },
            "test null",
        ),
        ({"classes": ["a"]}, "at least 2 classes"),
        ({"camera_trap": {"blank_class": "empty"}}, "blank_class 'empty' is not in classes"),
    ],
)
def test_impossible_combinations_are_refused_in_one_line(changes: dict, says: str) -> None:
    with pytest.raises(TaskError, match=says) as err:
        parse_task(kaggle_task(**changes), "leaves.yaml")
    assert "\n" not in str(err.value)


def test_a_missing_key_is_named() -> None:
    data = kaggle_task()
    del data["classes"]
    with pytest.raises(TaskError, match="missing key classes"):
        parse_task(data, "t")


def test_name_must_match_the_file_stem(tmp_path: Path) -> None:
    path = write(tmp_path, kaggle_task(), name="other")
    with pytest.raises(TaskError, match="set name: other"):
        read_task(path)


def test_folds_record_is_read_back_as_the_same_task(tmp_path: Path) -> None:
    task = parse_task(kaggle_task(), "t")
    folds = tmp_path / "folds.csv"
    assert recorded_task(folds) is None
    write_task(task_record_path(folds), task)
    assert recorded_task(folds) == task
    assert load_task(None, folds=folds) == task
    assert load_task("conservision", folds=folds) == conservision()


def test_runs_of_another_task_or_class_order_are_refused() -> None:
    task = parse_task(kaggle_task(), "t")
    task.check_record(task.record(), "runs/a")
    with pytest.raises(TaskError, match="made for task conservision"):
        task.check_record({}, "runs/a")
    with pytest.raises(TaskError, match="another order"):
        task.check_classes(("rust", "healthy", "scab"), "runs/a/oof.csv")
    with pytest.raises(TaskError, match="are not task leaves's"):
        task.check_classes(("a", "b"), "runs/a/oof.csv")
