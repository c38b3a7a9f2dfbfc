"""A CPU smoke test of every make stage, on tiny generated data, in a temporary folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

from kaggle_style.constants import CLASSES

REPO = Path(__file__).resolve().parents[1]


def _make(*targets: str, **variables: str) -> subprocess.CompletedProcess:
    args = ["make", "-C", str(REPO), *targets, *(f"{k}={v}" for k, v in variables.items())]
    return subprocess.run(args, capture_output=True, text=True, timeout=600)


def test_every_make_stage_runs_and_rebuilds_only_what_changed(tiny_data: Path, tmp_path: Path):
    stamp = tmp_path / "installed"
    stamp.touch()  # the environment running the tests is the installed one
    variables = {
        "DATA": str(tiny_data), "OUT": str(tmp_path), "MODELS": "tiny-cpu", "N_SPLITS": "3",
        "VENV": str(Path(sys.executable).parents[1]), "STAMP": str(stamp),
    }
    help_text = _make("help").stdout
    for target in ("folds", "crops", "train", "ensemble", "submit", "report", "test", "bench"):
        assert f"{target} " in help_text
    result = _make("folds", "crops", "train", "ensemble", "submit", "report", **variables)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (tmp_path / "folds" / "folds.csv").exists()
    assert (tmp_path / "crops" / "manifest.csv").exists()
    assert (tmp_path / "runs" / "tiny-cpu" / "oof.csv").exists()
    assert (tmp_path / "reports" / "ensemble" / "index.html").exists()
    submission = pd.read_csv(tmp_path / "submissions" / "ensemble.csv")
    assert list(submission.columns) == ["id", *CLASSES]
    assert len(submission) == len(pd.read_csv(tiny_data / "submission_format.csv"))
    again = _make("submit", **variables)
    assert again.returncode == 0
    assert "kaggle-style" not in again.stdout, "an up-to-date pipeline must not rerun a stage"
    validate = _make("validate", **variables)
    assert validate.returncode == 0, validate.stdout + validate.stderr
