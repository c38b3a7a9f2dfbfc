"""The make targets: every pipeline stage on tiny generated data in a temporary folder, and the
exact commands of the benchmark targets (a dry run, no work)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kaggle_style.constants import FOLD_COL, ID_COL, SHARED_DATA_ENV
from kaggle_style.task import CONSERVISION_CLASSES as CLASSES

REPO = Path(__file__).resolve().parents[1]
VENV = Path(sys.executable).parents[1]
WEIGHTS = "models/megadetector_lite/yolox_tiny_640_20220528.pth"


def _make(
    *targets: str, env: dict[str, str] | None = None, **variables: str
) -> subprocess.CompletedProcess:
    args = ["make", "-C", str(REPO), *targets, *(f"{k}={v}" for k, v in variables.items())]
    return subprocess.run(args, capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.heavy
def test_every_make_stage_runs_and_rebuilds_only_what_changed(tiny_data: Path, tmp_path: Path):
    stamp = tmp_path / "installed"
    stamp.touch()  # the environment running the tests is the installed one
    variables = {
        "DATA": str(tiny_data),
        "OUT": str(tmp_path),
        "MODELS": "tiny-cpu",
        "N_SPLITS": "3",
        "VENV": str(VENV),
        "STAMP": str(stamp),
        # the generator's simulated detections, as the demo uses: the detector has its own tests
        "DETECTIONS": str(tiny_data / "detections.json"),
    }
    help_text = _make("help").stdout
    for target in ("folds", "crops", "train", "ensemble", "submit", "report", "test", "bench"):
        assert f"{target} " in help_text
    result = _make("folds", "crops", "train", "ensemble", "submit", "report", **variables)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    train_ids = set(pd.read_csv(tiny_data / "train_features.csv", dtype={ID_COL: str})[ID_COL])
    test_ids = set(pd.read_csv(tiny_data / "test_features.csv", dtype={ID_COL: str})[ID_COL])
    folds = pd.read_csv(tmp_path / "folds" / "folds.csv", dtype={ID_COL: str})
    assert set(folds[ID_COL]) == train_ids and folds[ID_COL].is_unique
    assert sorted(folds[FOLD_COL].unique()) == [0, 1, 2]  # N_SPLITS reached the stage
    manifest = pd.read_csv(tmp_path / "crops" / "manifest.csv", dtype={ID_COL: str})
    assert set(manifest[ID_COL]) == train_ids | test_ids  # every image has its crops
    oof = pd.read_csv(tmp_path / "runs" / "tiny-cpu" / "oof.csv", dtype={ID_COL: str})
    assert set(oof[ID_COL]) == train_ids and oof[ID_COL].is_unique
    np.testing.assert_allclose(oof[list(CLASSES)].sum(axis=1), 1.0, atol=1e-6)
    page = (tmp_path / "reports" / "ensemble" / "index.html").read_text()
    assert "tiny-cpu" in page  # the report covers the model MODELS named
    submission = pd.read_csv(tmp_path / "submissions" / "ensemble.csv")
    assert list(submission.columns) == ["id", *CLASSES]
    assert len(submission) == len(pd.read_csv(tiny_data / "submission_format.csv"))
    again = _make("submit", **variables)
    assert again.returncode == 0
    assert "kaggle-style" not in again.stdout, "an up-to-date pipeline must not rerun a stage"
    validate = _make("validate", **variables)
    assert validate.returncode == 0, validate.stdout + validate.stderr


def _dry_run(*targets: str, env_shared: str | None = None, **variables: str) -> list[list[str]]:
    """The commands `make -n` would run, each split into words."""
    env = {k: v for k, v in os.environ.items() if k != SHARED_DATA_ENV}
    if env_shared is not None:
        env[SHARED_DATA_ENV] = env_shared
    stamp = str(VENV / ".installed")  # `-o`: taken as made, whatever its age or presence
    fixed = {
        "VENV": str(VENV),
        "STAMP": stamp,
        "MODELS": "tiny-cpu",
        "ENSEMBLE_CONFIG": "",
        "OUT": "out",
    }
    done = _make(
        "-n", "--no-print-directory", "-o", stamp, *targets, env=env, **{**fixed, **variables}
    )
    assert done.returncode == 0, done.stderr
    text = done.stdout.replace("\\\n", " ")  # a recipe's continued lines are one command
    return [line.split() for line in text.splitlines() if line.strip()]


def test_benchmark_targets_run_their_module_with_the_shared_data_passed(tmp_path: Path):
    """Each benchmark target is `python -m benchmarks.NAME` from the checkout, with SHARED_DATA
    (else $KAGGLE_STYLE_SHARED_DATA, else ../shared/data) passed explicitly, nothing else."""
    py = str(VENV / "bin" / "python")
    shared = str(tmp_path / "shared")
    expected = [
        [py, "-m", "benchmarks.bench", "--json"],
        [py, "-m", "benchmarks.gpu_check", "--weights", f"{shared}/{WEIGHTS}"],
        [py, "-m", "benchmarks.real_check", "--shared", shared],
        [
            py,
            "-m",
            "benchmarks.real_dry_run",
            "--work-dir",
            "out/real_dry_run",
            "--source",
            f"{shared}/conservision",
            "--threads",
            "1",
        ],
        [py, "-m", "benchmarks.cache_bench", "--shared", shared],
    ]
    targets = ("bench", "gpu-check", "real-check", "real-dry-run", "cache-bench")
    assert _dry_run(*targets, SHARED_DATA=shared) == expected
    assert _dry_run(*targets, env_shared=shared) == expected  # the variable, when exported
    assert _dry_run("real-check") == [
        [py, "-m", "benchmarks.real_check", "--shared", "../shared/data"]
    ]
    small, growth = _dry_run(
        "gpu-check", "real-dry-run", SMALL="1", GROWTH="1", THREADS="3", SHARED_DATA=shared
    )
    assert small == [*expected[1], "--small"]
    assert growth == [*expected[3][:-1], "3", "--growth-from", "0.125"]
    for command in expected:  # every module named is there to run
        assert importlib.util.find_spec(command[2]) is not None, command[2]


@pytest.mark.parametrize("part", ["bench", "pipeline"])
def test_lent_gpu_part_runs_its_benchmark_from_the_carried_tree(part: str) -> None:
    commands = [" ".join(c) for c in _dry_run("gpu-check-lent", PART=part)]
    (run,) = [c for c in commands if "timeout" in c]
    assert run.startswith(
        "PYTHONPATH=/tmp/site:. PYTHONUNBUFFERED=1 timeout 560 python3 -m "
        f"benchmarks.gpu_check --only {part} --work-dir /tmp/gpu_check"
    )
    assert ("--weights .gpu_carry/" in run) == (part == "pipeline")


def test_lent_gpu_check_refuses_an_unknown_part_before_installing_anything() -> None:
    done = _make("gpu-check-lent", PART="nope")
    assert done.returncode != 0
    assert "PART=nope: use one of" in done.stdout and "bench" in done.stdout
    assert "pip install" not in done.stdout
