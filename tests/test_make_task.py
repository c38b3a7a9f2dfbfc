"""`make folds train ensemble submit DATA=… TASK=…` is the whole job for a competition that is
not Conser-vision: the Makefile asks the task for its tables and submission format, skips the
camera-trap stages it has none of, and later calls find the task `folds` recorded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from kaggle_style.demo.kaggle_layout import KaggleDemoConfig, generate_kaggle_demo
from kaggle_style.task import read_task

REPO = Path(__file__).resolve().parents[1]
VENV = Path(sys.executable).parents[1]
TINY = {"n_train": 42, "n_test": 10, "width": 48, "height": 36, "n_train_groups": 6}


def _make(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "-C", str(REPO), *args], capture_output=True, text=True, timeout=600
    )


@pytest.mark.heavy
def test_make_runs_a_kaggle_layout_task_end_to_end_and_later_calls_use_the_recorded_task(
    tmp_path: Path,
) -> None:
    data = generate_kaggle_demo(KaggleDemoConfig(out=str(tmp_path / "data"), **TINY))
    stamp = tmp_path / "installed"
    stamp.touch()  # the environment running the tests is the installed one
    common = [f"DATA={data}", f"OUT={tmp_path}", f"VENV={VENV}", f"STAMP={stamp}"]
    common += ["MODELS=tiny-cpu", "N_SPLITS=3"]
    result = _make("folds", "train", "ensemble", "submit", "TASK=boreal", *common)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    task = read_task(REPO / "configs" / "tasks" / "boreal.yaml")
    fmt = pd.read_csv(data / task.tables.submission_format, dtype=str, keep_default_na=False)
    sub = pd.read_csv(tmp_path / "submissions" / "ensemble.csv", dtype=str, keep_default_na=False)
    assert list(sub.columns) == list(fmt.columns)  # the task's format, not DrivenData's
    assert list(sub[task.id_column]) == list(fmt[task.id_column])
    assert set(sub[task.submission.label_column]) <= set(task.classes)
    # a task without camera-trap parts: no detector, no crops, no info-bar readings
    assert not (tmp_path / "crops").exists() and not (tmp_path / "meta").exists()
    assert "--task boreal" in result.stdout
    # without TASK, make finds the task `folds` recorded: nothing is out of date, nothing reruns
    again = _make("submit", *common)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "kaggle-style" not in again.stdout, again.stdout[-3000:]


def test_make_names_a_missing_task_table_and_an_unknown_task_in_one_line(tmp_path: Path) -> None:
    stamp = tmp_path / "installed"
    stamp.touch()
    common = [f"OUT={tmp_path}", f"VENV={VENV}", f"STAMP={stamp}", "MODELS=tiny-cpu"]
    missing = _make("folds", f"DATA={tmp_path / 'empty'}", "TASK=boreal", *common)
    assert missing.returncode != 0
    assert "train.csv not found" in missing.stdout and "--task boreal" in missing.stdout
    unknown = _make("folds", f"DATA={tmp_path}", "TASK=no_such_task", *common)
    assert unknown.returncode != 0
    assert "TASK=no_such_task" in unknown.stderr and "task file not found" in unknown.stderr
