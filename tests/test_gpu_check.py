"""`kaggle-style gpu-check --small`: the GPU check's own path, run on the CPU as CI can."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from benchmarks.data_path import DATA_PATHS

REPO = Path(__file__).resolve().parents[1]


def test_small_gpu_check_runs_every_stage_and_prints_one_json_line(tmp_path: Path,
                                                                     shared_data: Path):
    weights = shared_data / "models/megadetector_lite/yolox_tiny_640_20220528.pth"
    out = subprocess.run(
        [sys.executable, "-m", "kaggle_style", "gpu-check", "--small", "--work-dir",
         str(tmp_path), "--weights", str(weights)],
        cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["small"] is True and result["card"] is None
    assert [(r["backbone"], r["data_path"]) for r in result["bench"]] == [
        (backbone, path) for backbone in ("test_convnext", "test_vit") for path in DATA_PATHS]
    in_row = [(r["backbone"], r["data_path"]) for r in result["bench"]
              if r.get("e2e_train_in_row_img_s", 0) > 0]
    assert in_row == [("test_convnext", DATA_PATHS[0]), ("test_vit", DATA_PATHS[0])]
    for row in result["bench"]:
        assert row["bound_train_img_s"] > 0 and row["e2e_train_img_s"] > 0
        assert row["e2e_train_vs_compiled_bound"] == row["e2e_train_img_s"] / row[
            "bound_train_img_s"]  # small mode runs eager only: its own bound is the reference
    pipeline = result["pipeline"]
    assert list(pipeline["stages"]) == ["generate_data", "folds", "detect", "crop", "train",
                                        "ensemble", "submit", "validate"]
    assert all(s["seconds"] > 0 for s in pipeline["stages"].values())
    submission = pd.read_csv(tmp_path / "pipeline" / "submission.csv")
    assert len(submission) == 6 and pipeline["oof_rows"] == 30
    assert json.loads((tmp_path / "gpu_check.json").read_text()) == result


def test_bench_rows_are_saved_after_each_backbone_so_a_cut_short_check_keeps_them(
        tmp_path: Path, monkeypatch):
    import benchmarks.bench as bench
    from benchmarks.gpu_check import GpuCheckConfig, gpu_check

    real_run_bench = bench.run_bench

    def stopped_at_the_second_backbone(cfg, note=None):
        if cfg.backbone == "test_vit":
            raise TimeoutError("the call's time limit")
        return real_run_bench(cfg, note)

    monkeypatch.setattr(bench, "run_bench", stopped_at_the_second_backbone)
    cfg = GpuCheckConfig.small(str(tmp_path))
    with pytest.raises(TimeoutError):
        gpu_check(cfg, parts=("bench",))
    saved = json.loads((tmp_path / "gpu_check.json").read_text())
    assert [(r["backbone"], r["data_path"]) for r in saved["bench"]] == [
        ("test_convnext", path) for path in DATA_PATHS]
    assert all(r["e2e_train_img_s"] > 0 for r in saved["bench"])
