"""The second embedded demo (`make demo TASK=boreal`): a Kaggle layout unlike Conser-vision's in
every competition-specific respect, written the same for a seed, and reached from `make demo`
only when TASK names it (the Conser-vision demo stays the default, its command unchanged)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from kaggle_style.demo.kaggle_layout import KaggleDemoConfig, generate_kaggle_demo
from kaggle_style.task import CONSERVISION_CLASSES, read_task

REPO = Path(__file__).resolve().parents[1]
VENV = Path(sys.executable).parents[1]
SMALL = {"n_train": 24, "n_test": 6, "width": 32, "height": 24, "n_train_groups": 4}


@pytest.fixture(scope="module")
def boreal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("boreal_demo") / "a"
    return generate_kaggle_demo(KaggleDemoConfig(out=str(out), n_test_groups=2, **SMALL))


def test_the_boreal_demo_differs_from_conservision_in_every_task_key() -> None:
    task = read_task(REPO / "configs" / "tasks" / "boreal.yaml")
    assert len(task.classes) != len(CONSERVISION_CLASSES)
    assert not set(task.classes) & set(CONSERVISION_CLASSES)
    assert task.id_column == "image_id"
    assert task.group_column not in (None, "site")
    assert (task.labels.kind, task.submission.kind, task.score_metric) == (
        "column",
        "label",
        "accuracy",
    )
    assert "**" in task.images.train_pattern and "**" in task.images.test_pattern


def test_the_boreal_tables_are_kaggles_with_images_in_camera_sub_folders(boreal: Path) -> None:
    train = pd.read_csv(boreal / "train.csv", dtype=str)
    fmt = pd.read_csv(boreal / "sample_submission.csv", dtype=str)
    assert list(train.columns) == ["image_id", "camera", "label"]
    assert list(fmt.columns) == ["image_id", "label"]
    for row in train.itertuples():
        assert (boreal / "train_images" / row.camera / f"{row.image_id}.jpg").is_file()
    assert len(list((boreal / "test_images").rglob("*.jpg"))) == len(fmt)
    test_cameras = {p.parent.name for p in (boreal / "test_images").rglob("*.jpg")}
    assert not test_cameras & set(train["camera"])  # the test cameras are unseen


def test_the_boreal_demo_is_the_same_for_a_seed(boreal: Path, tmp_path: Path) -> None:
    again = generate_kaggle_demo(
        KaggleDemoConfig(out=str(tmp_path / "b"), n_test_groups=2, **SMALL)
    )
    for name in ("train.csv", "sample_submission.csv", "truth.csv"):
        assert (again / name).read_bytes() == (boreal / name).read_bytes(), name


def _dry_run(*variables: str) -> str:
    # PY names no program: make reads no model set (the python start-ups that would cost seconds)
    args = ["make", "-n", "-C", str(REPO), "demo", f"VENV={VENV}", "PY=/nonexistent", *variables]
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=True).stdout


def test_make_demo_runs_boreal_only_when_task_names_it() -> None:
    default, boreal = _dry_run(), _dry_run("TASK=boreal")
    assert "task demo boreal" in boreal and "DATA=data/demo" not in boreal
    assert "task demo" not in default and "DATA=data/demo" in default
    assert _dry_run("TASK=conservision") == default


@pytest.mark.heavy
def test_task_demo_runs_boreal_end_to_end_to_a_scored_submission(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`make demo TASK=boreal`'s command at a tiny size (timm's test_resnet, one epoch)."""
    from kaggle_style.cli import main
    from kaggle_style.stages import task_demo

    monkeypatch.chdir(REPO)  # the demo's task file and recipes are the checkout's
    monkeypatch.setitem(
        task_demo.DEMOS, "boreal", lambda out: KaggleDemoConfig(out=out, n_test_groups=2, **SMALL)
    )
    monkeypatch.setattr(task_demo, "RECIPE", Path("configs") / "tiny-cpu.yaml")
    data = tmp_path / "data" / "boreal"
    assert main(["task", "demo", "boreal", "--data", str(data), "--work", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    work = tmp_path / "runs" / "boreal"
    sub = pd.read_csv(work / "submission.csv", dtype=str)
    assert list(sub.columns) == ["image_id", "label"]
    assert list(sub["image_id"]) == list(
        pd.read_csv(data / "sample_submission.csv", dtype=str)["image_id"]
    )
    assert (work / "report" / "index.html").is_file()
    assert "hidden test accuracy" in out and "valid:" in out
