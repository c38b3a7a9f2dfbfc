"""Tables read through a task: any file names, id column, path column or patterns, label column
or one-hot, any group column or none; always the project's own columns out."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from kaggle_style.data.layout import check_layout
from kaggle_style.data.tables import TableError, load_competition_data
from kaggle_style.errors import UserError
from kaggle_style.task import parse_task, recorded_task

CLASSES = ["cat", "dog", "fox"]


def kaggle_folder(root: Path, n: int = 12, nested: bool = True) -> Path:
    """train.csv (image_id, species, location), sample_submission.csv (image_id, species) and
    .png files, in sub-folders when `nested`."""
    rows = [
        {"image_id": f"im{i:03d}", "species": CLASSES[i % 3], "location": f"L{i % 4}"}
        for i in range(n)
    ]
    pd.DataFrame(rows).to_csv(root / "train.csv", index=False)
    test_ids = [f"te{i:03d}" for i in range(5)]
    pd.DataFrame({"image_id": test_ids, "species": "cat"}).to_csv(
        root / "sample_submission.csv", index=False
    )
    for row in rows:
        folder = root / "train_images" / (row["location"] if nested else "")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{row['image_id']}.png").write_bytes(b"png")
    (root / "test_images").mkdir()
    for image_id in test_ids:
        (root / "test_images" / f"{image_id}.png").write_bytes(b"png")
    return root


def kaggle_task(**changes: object):
    data = {
        "name": "pets",
        "tables": {"train": "train.csv", "submission_format": "sample_submission.csv"},
        "id_column": "image_id",
        "images": {
            "train_pattern": "train_images/**/{id}.png",
            "test_pattern": "test_images/{id}.png",
        },
        "labels": {"kind": "column", "column": "species"},
        "classes": CLASSES,
        "group_column": "location",
        "submission": {"kind": "label", "label_column": "species"},
    }
    data.update(changes)
    return parse_task(data, "pets.yaml")


def test_kaggle_layout_comes_out_in_the_project_columns(tmp_path: Path) -> None:
    data = load_competition_data(kaggle_folder(tmp_path), kaggle_task())
    assert list(data.train.columns) == ["id", "filepath", "site", "label"]
    assert data.train.loc[0, "filepath"] == "train_images/L0/im000.png"
    assert set(data.train["site"]) == {"L0", "L1", "L2", "L3"}
    assert data.test["id"].tolist() == [f"te{i:03d}" for i in range(5)]  # the format's order
    assert data.test.loc[0, "filepath"] == "test_images/te000.png"
    assert data.classes == tuple(CLASSES)


def test_no_group_column_makes_each_image_its_own_group(tmp_path: Path) -> None:
    data = load_competition_data(kaggle_folder(tmp_path), kaggle_task(group_column=None))
    assert (data.train["site"] == data.train["id"]).all()


def test_a_missing_group_column_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(TableError, match=r"train\.csv: missing column\(s\) camera"):
        load_competition_data(kaggle_folder(tmp_path), kaggle_task(group_column="camera"))


def test_labels_naming_an_unknown_class_are_refused(tmp_path: Path) -> None:
    root = kaggle_folder(tmp_path)
    train = pd.read_csv(root / "train.csv")
    train.loc[3, "species"] = "wolf"
    train.to_csv(root / "train.csv", index=False)
    with pytest.raises(TableError, match=r"names 1 class.*not in task pets's classes: wolf"):
        load_competition_data(root, kaggle_task())


def test_pattern_finding_no_file_says_how_many_and_which(tmp_path: Path) -> None:
    root = kaggle_folder(tmp_path)
    (root / "train_images/L1/im001.png").unlink()
    (root / "train_images/L2/im002.png").unlink()
    with pytest.raises(UserError, match=r"2 of 12 train id\(s\) found no file.*im001, im002") as e:
        load_competition_data(root, kaggle_task())
    assert "\n" not in str(e.value)


def test_flat_pattern_does_not_look_in_sub_folders(tmp_path: Path) -> None:
    root = kaggle_folder(tmp_path)
    images = {"train_pattern": "train_images/{id}.png", "test_pattern": "test_images/{id}.png"}
    with pytest.raises(UserError, match="12 of 12 train id"):
        load_competition_data(root, kaggle_task(images=images))


def test_a_format_without_the_label_column_is_refused(tmp_path: Path) -> None:
    root = kaggle_folder(tmp_path)
    pd.DataFrame({"image_id": ["te000"], "answer": ["cat"]}).to_csv(
        root / "sample_submission.csv", index=False
    )
    with pytest.raises(TableError, match=r"sample_submission\.csv: missing column\(s\) species"):
        load_competition_data(root, kaggle_task())


def test_check_layout_reports_a_kaggle_folder_ok(tmp_path: Path) -> None:
    report = check_layout(kaggle_folder(tmp_path), task=kaggle_task())
    assert report.problems == []
    assert any("3 of 3 classes" in text for _, _, text in report.lines)


def test_folds_stage_records_the_task_and_warns_without_groups(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    root = kaggle_folder(tmp_path / "data", n=30)
    task_file = tmp_path / "pets.yaml"
    task = kaggle_task(group_column=None)
    task_file.write_text(yaml.safe_dump(task.as_yaml_dict()))
    out = tmp_path / "folds" / "folds.csv"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "kaggle_style",
            "folds",
            "--data",
            str(root),
            "--out",
            str(out),
            "--n-splits",
            "3",
            "--task",
            str(task_file),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "warning: task pets has no group_column" in result.stdout
    assert recorded_task(out) == task
    config = yaml.safe_load(out.with_suffix(".config.yaml").read_text())
    assert config["task"] == "pets" and config["classes"] == CLASSES
