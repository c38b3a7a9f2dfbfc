"""Two real processes under `accelerate launch --multi_gpu` (gloo on CPU): right, not only
complete: every id once, the single-process schedule, one writer per file, one cache build."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from kaggle_style.config import resolve_config
from kaggle_style.constants import ID_COL
from kaggle_style.run_contract import check_run
from kaggle_style.training.config import TrainConfig
from kaggle_style.training.run import run_training

# Started processes load tests/write_log/sitecustomize.py: it logs each output's writer.
WRITE_LOG_HOOK = str(Path(__file__).resolve().parent / "write_log")

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "configs" / "tiny-cpu.yaml"


@pytest.mark.heavy
def test_two_process_launch_matches_the_single_process_contract(
    tiny_data: Path, tiny_folds: Path, tmp_path: Path
):
    accelerate = Path(sys.executable).with_name("accelerate")
    if not accelerate.exists() and shutil.which("accelerate") is None:
        pytest.fail("the `accelerate` command is missing from the environment")
    write_log = tmp_path / "writes.log"
    hooked = os.pathsep.join(filter(None, [WRITE_LOG_HOOK, os.environ.get("PYTHONPATH")]))
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "KAGGLE_STYLE_WRITE_LOG": str(write_log),
        "PYTHONPATH": hooked,
    }
    cmd = [
        str(accelerate if accelerate.exists() else "accelerate"),
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "-m",
        "kaggle_style",
        "train",
        "--config",
        str(RECIPE),
        "--name",
        "ddp",
        "--data",
        str(tiny_data),
        "--folds-file",
        str(tiny_folds),
        "--runs-dir",
        str(tmp_path / "runs"),
        "--quiet",
        "--set",
        f"cache_dir={tmp_path}/cache",
        "epochs=2",
    ]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    run = (tmp_path / "runs" / "ddp").resolve()
    check_run(run)

    oof = pd.read_csv(run / "oof.csv", dtype={ID_COL: str})
    folds = pd.read_csv(tiny_folds, dtype={ID_COL: str})
    assert oof[ID_COL].is_unique and sorted(oof[ID_COL]) == sorted(folds[ID_COL])
    test = pd.read_csv(run / "test.csv", dtype={ID_COL: str})
    test_ids = pd.read_csv(tiny_data / "test_features.csv", dtype={ID_COL: str})[ID_COL]
    assert test[ID_COL].is_unique and sorted(test[ID_COL]) == sorted(test_ids)

    writers: dict[str, set[str]] = {}
    for line in write_log.read_text().splitlines():
        pid, path = line.split(" ", 1)
        writers.setdefault(path, set()).add(pid)
    assert len(set().union(*writers.values())) == 1, "only the main process writes files"
    assert str(run / "fold0" / "model.safetensors") in writers
    cache_builds = [p for p in writers if p.endswith("/meta.json") and "/cache/" in p]
    assert len(cache_builds) == 2, cache_builds  # train + test caches, each written once

    single = resolve_config(
        TrainConfig,
        RECIPE,
        {
            "name": "single",
            "data": str(tiny_data),
            "folds_file": str(tiny_folds),
            "runs_dir": str(tmp_path / "runs"),
            "cache_dir": str(tmp_path / "cache"),
            "epochs": 2,
            "progress": False,
            "folds": [0],
        },
    )
    run_training(single)
    expected = json.loads((single.run_dir / "fold0" / "done.json").read_text())["last_lr"]
    for fold in range(3):
        got = json.loads((run / f"fold{fold}" / "done.json").read_text())["last_lr"]
        assert got == pytest.approx(expected, rel=1e-9), f"fold {fold}: schedule ended at {got}"
    assert expected == pytest.approx(single.lr * single.min_lr_ratio, rel=1e-9)
