"""Fault injection: a training run killed at random points three times, resumed each time,
still produces the same submission as a clean run (`make faults`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kaggle_style.task import CONSERVISION_CLASSES as CLASSES

pytestmark = pytest.mark.slow


def _train_args(data: Path, folds: Path, runs: Path, cache: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "kaggle_style",
        "train",
        "--name",
        "m",
        "--data",
        str(data),
        "--folds-file",
        str(folds),
        "--runs-dir",
        str(runs),
        "--backbone",
        "test_resnet",
        "--epochs",
        "3",
        "--quiet",
        "--set",
        "image_size=48",
        "batch_size=16",
        "num_workers=0",
        "mixup_alpha=0.4",
        f"cache_dir={cache}",
    ]


def _submission(data: Path, runs: Path, out: Path) -> pd.DataFrame:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "kaggle_style",
            "submit",
            "--predictions",
            str(runs / "m" / "test.csv"),
            "--format",
            str(data / "submission_format.csv"),
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    return pd.read_csv(out)


def test_three_random_kills_give_the_same_submission(
    tiny_data: Path, tiny_folds: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    clean_runs, faulty_runs, cache = tmp_path / "clean", tmp_path / "faulty", tmp_path / "cache"
    subprocess.run(
        _train_args(tiny_data, tiny_folds, clean_runs, cache),
        check=True,
        env=env,
        capture_output=True,
    )
    clean = _submission(tiny_data, clean_runs, tmp_path / "clean.csv")

    rng = np.random.default_rng(0)
    kills = 0
    for _ in range(3):
        proc = subprocess.Popen(
            [*_train_args(tiny_data, tiny_folds, faulty_runs, cache), "--resume"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(float(rng.uniform(3.0, 12.0)))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    assert kills >= 1, "the run finished before any kill: lengthen it"
    subprocess.run(
        [*_train_args(tiny_data, tiny_folds, faulty_runs, cache), "--resume"],
        check=True,
        env=env,
        capture_output=True,
    )
    faulty = _submission(tiny_data, faulty_runs, tmp_path / "faulty.csv")
    assert list(faulty["id"]) == list(clean["id"])
    diff = np.abs(faulty[list(CLASSES)].to_numpy() - clean[list(CLASSES)].to_numpy()).max()
    assert diff < 1e-5
