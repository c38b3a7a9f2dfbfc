"""`python -m benchmarks.gpu_check --small`: the GPU check's own path, run on the CPU as CI can."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from benchmarks.data_path import DATA_PATHS
from kaggle_style.constants import SHARED_DATA_ENV

REPO = Path(__file__).resolve().parents[1]
PIPELINE_STAGES = [
    "generate_data",
    "folds",
    "detect",
    "crop",
    "train",
    "ensemble",
    "submit",
    "validate",
]


@pytest.mark.slow  # the benchmark's whole pipeline; test_make runs the stages by default
def test_small_gpu_check_runs_every_stage_and_prints_one_json_line(
    tmp_path: Path, shared_data: Path
):
    env = {**os.environ, "OMP_NUM_THREADS": "1", SHARED_DATA_ENV: str(shared_data)}
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu_check", "--small", "--work-dir", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    wall = time.perf_counter() - started
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["small"] is True and result["card"] is None
    assert [(r["backbone"], r["data_path"]) for r in result["bench"]] == [
        (backbone, path) for backbone in ("test_convnext", "test_vit") for path in DATA_PATHS
    ]
    in_row = [
        (r["backbone"], r["data_path"]) for r in result["bench"] if "e2e_train_in_row_img_s" in r
    ]
    assert in_row == [("test_convnext", DATA_PATHS[0]), ("test_vit", DATA_PATHS[0])]
    for row in result["bench"]:
        # each ratio is the quotient of the figures on its own row (small mode runs eager
        # only: its own bound is the reference), and the ceiling the slower of its two caps
        assert row["e2e_train_ratio"] == row["e2e_train_img_s"] / row["bound_train_img_s"]
        assert row["e2e_train_vs_compiled_bound"] == row["e2e_train_ratio"]
        assert row["e2e_infer_vs_compiled_bound"] == row["e2e_infer_ratio"]
        transport = row[
            "transport_float32_img_s" if row["data_path"] == "float" else "transport_uint8_img_s"
        ]
        assert row["predicted_ceiling_img_s"] == min(
            transport, max(1, row["workers"]) * row["per_worker_img_s"]
        )
        if "e2e_train_in_row_img_s" in row:
            assert row["e2e_train_in_row_vs_compiled_bound"] == (
                row["e2e_train_in_row_img_s"] / row["bound_train_img_s"]
            )
    pipeline = result["pipeline"]
    assert list(pipeline["stages"]) == PIPELINE_STAGES
    # the stages ran one after another inside the pipeline's total, itself inside the call
    stage_sum = sum(s["seconds"] for s in pipeline["stages"].values())
    assert 0.9 * pipeline["total_s"] - 0.1 <= stage_sum <= pipeline["total_s"] + 0.1
    assert pipeline["total_s"] <= wall
    submission = pd.read_csv(tmp_path / "pipeline" / "submission.csv")
    assert len(submission) == 6 and pipeline["oof_rows"] == 30
    assert json.loads((tmp_path / "gpu_check.json").read_text()) == result


def test_bench_rows_are_saved_after_each_backbone_so_a_cut_short_check_keeps_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import benchmarks.bench as bench
    from benchmarks.gpu_check import GpuCheckConfig, gpu_check

    real_run_bench = bench.run_bench
    finished = []

    def stopped_at_the_second_backbone(cfg, note=None):
        if cfg.backbone == "test_vit":
            raise TimeoutError("the call's time limit")
        finished.append(real_run_bench(cfg, note))
        return finished[-1]

    monkeypatch.setattr(bench, "run_bench", stopped_at_the_second_backbone)
    cfg = GpuCheckConfig.small(str(tmp_path))
    with pytest.raises(TimeoutError):
        gpu_check(cfg, parts=("bench",))
    saved = json.loads((tmp_path / "gpu_check.json").read_text())
    assert [(r["backbone"], r["data_path"]) for r in saved["bench"]] == [
        ("test_convnext", path) for path in DATA_PATHS
    ]
    (measured,) = finished  # the first backbone's one (eager) run: its figures, as measured
    assert [r["e2e_train_img_s"] for r in saved["bench"]] == [
        measured["paths"][path]["e2e_train_img_s"] for path in DATA_PATHS
    ]
    assert {r["bound_train_img_s"] for r in saved["bench"]} == {measured["bound_train_img_s"]}


def test_the_pipeline_part_without_shared_data_is_one_line_naming_both_ways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    from benchmarks.gpu_check import main

    monkeypatch.delenv(SHARED_DATA_ENV, raising=False)
    assert main(["--small", "--only", "pipeline", "--work-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "--shared" in err and SHARED_DATA_ENV in err
    assert not (tmp_path / "gpu_check.json").exists()  # refused before any work
