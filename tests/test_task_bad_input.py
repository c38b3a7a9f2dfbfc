"""A task that does not fit its data is one line and exit 2 from the stage, before any output:
labels naming a class the task lacks, a missing group column, a pattern that finds no file for
some ids (how many, which), an unknown key in the task file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from kaggle_style.cli import main
from kaggle_style.demo.kaggle_layout import KaggleDemoConfig, generate_kaggle_demo

REPO = Path(__file__).resolve().parents[1]
SPLITS = ["--n-splits", "3"]
BOREAL = yaml.safe_load((REPO / "configs" / "tasks" / "boreal.yaml").read_text())


@pytest.fixture(scope="module")
def boreal_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cfg = KaggleDemoConfig(
        out=str(tmp_path_factory.mktemp("bad") / "boreal"),
        n_train=24,
        n_test=6,
        width=32,
        height=24,
        n_train_groups=4,
        n_test_groups=2,
    )
    return generate_kaggle_demo(cfg)


def task_file(folder: Path, **changes: object) -> Path:
    path = folder / "tasks" / "boreal.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({**BOREAL, **changes}, sort_keys=False))
    return path


def refused_folds(
    data: Path, task: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> str:
    """`folds` with this task: exit 2, one line, no folds file (nor its records)."""
    out = tmp_path / "folds" / "folds.csv"
    capsys.readouterr()
    code = main(["folds", "--data", str(data), "--task", str(task), "--out", str(out), *SPLITS])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert not out.parent.exists() or not any(out.parent.iterdir())
    return err


def test_the_boreal_task_file_fits_its_data(
    boreal_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The control of the refusals below: the unchanged task file is accepted."""
    out = tmp_path / "folds.csv"
    task = task_file(tmp_path)
    argv = ["folds", "--data", str(boreal_data), "--task", str(task), "--out", str(out)]
    assert main(argv + SPLITS) == 0
    assert out.is_file()


def test_labels_naming_a_class_the_task_lacks(
    boreal_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    classes = [c for c in BOREAL["classes"] if c != "lynx"]
    err = refused_folds(boreal_data, task_file(tmp_path, classes=classes), tmp_path, capsys)
    assert "lynx" in err


def test_a_missing_group_column(
    boreal_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = refused_folds(boreal_data, task_file(tmp_path, group_column="station"), tmp_path, capsys)
    assert "station" in err


def test_a_pattern_that_finds_no_file_for_some_ids(
    boreal_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without `**` the pattern misses every image in a camera's sub-folder: all are named."""
    images = {**BOREAL["images"], "train_pattern": "train_images/{id}.jpg"}
    err = refused_folds(boreal_data, task_file(tmp_path, images=images), tmp_path, capsys)
    n_train = len(pd.read_csv(boreal_data / "train.csv"))
    assert str(n_train) in err
    first_id = pd.read_csv(boreal_data / "train.csv", dtype=str)["image_id"].iloc[0]
    assert first_id in err


def test_a_task_file_with_an_unknown_key(
    boreal_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = refused_folds(boreal_data, task_file(tmp_path, image_size=48), tmp_path, capsys)
    assert "image_size" in err and "boreal.yaml" in err
