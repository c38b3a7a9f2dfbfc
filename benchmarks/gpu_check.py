"""`python -m benchmarks.gpu_check`: one call on a lent H100/H200 measures the real job's speed.

Part 1, throughput: `bench` for ConvNeXt-T and ViT-B/16 at 224 px, eager and `torch.compile`d,
each end-to-end figure against the compiled model-only bound. Part 2, the real size: a generated
DrivenData folder with the competition's counts (16,488 train / 4,464 test images on 148 / 51
sites, 960x540 JPEGs) through detect → crop → train (ConvNeXt-T, the real recipe cut to 1 epoch
per fold, every fold) → ensemble → submit → validate, each stage timed as its own process.
`small` shrinks every size so the same path runs on a CPU in about a minute (tested in CI).
Prints one JSON line and keeps it in WORK_DIR/gpu_check.json, rewritten after each backbone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks.common import run_main, shared_data
from benchmarks.data_path import DATA_PATHS
from benchmarks.sized_data import generated_tables, write_sized_folder
from benchmarks.stage_runner import StageFailed, StageTimer
from kaggle_style.config import stage_config
from kaggle_style.constants import OOF_FILE
from kaggle_style.errors import UserError
from kaggle_style.task import SUBMISSION_FORMAT, TRAIN_LABELS

# Under the shared data folder (--weights wins); the pipeline part detects with it.
DETECTOR_WEIGHTS = "models/megadetector_lite/yolox_tiny_640_20220528.pth"
# The parts one call can run (--only); a new part is a function here and a name in this list.
PARTS = ("bench", "pipeline")


@stage_config(frozen=True)
class GpuCheckConfig:
    """Sizes of both parts; `small()` gives the CPU-sized variant."""

    work_dir: str = "gpu_check"
    detector_weights: str = ""  # needed by the pipeline part only
    backbones: tuple[str, ...] = ("convnext_tiny", "vit_base_patch16_224")
    bench_image_size: int = 224
    bench_batch_size: int | None = None  # None: bench's device default
    bench_images: int | None = None  # None: bench's GPU default, one real training fold's epoch
    bench_epochs: int = 3  # the first builds the cache; the others are the timed ones
    bench_steps: int | None = 20
    detect_workers: int = 14  # decoding 960x540 JPEGs feeds the GPU detector
    n_train: int = 16_488
    n_test: int = 4_464
    train_sites: int = 148
    test_sites: int = 51
    frame_width: int = 960
    frame_height: int = 540
    unique_frames: int = 256
    recipe: str = "configs/convnext_tiny.yaml"
    train_set: tuple[str, ...] = (
        "pretrained=false",
        "epochs=1",
        "freeze_epochs=0",
        "warmup_epochs=0",
        "ema_decay=0.0",
    )
    n_splits: int = 5
    compile_modes: tuple[bool, ...] = (False, True)
    # the default path, in every compile mode; in the last one also with one iterator across
    # the epochs (the lever still open). `float` and `uint8+device_augment` both trail uint8 on
    # a GPU (benchmarks/results/gpu_check_h100_*.json), so a call's minutes go to the default;
    # `benchmarks.bench --data-paths` still runs them.
    bench_paths: tuple[str, ...] = ("uint8",)

    @classmethod
    def small(cls, work_dir: str = "gpu_check") -> GpuCheckConfig:
        return cls(
            work_dir=work_dir,
            backbones=("test_convnext", "test_vit"),
            bench_image_size=64,
            bench_batch_size=8,
            bench_images=32,
            bench_epochs=2,
            bench_steps=2,
            detect_workers=0,
            n_train=30,
            n_test=6,
            train_sites=6,
            test_sites=2,
            frame_width=320,
            frame_height=180,
            unique_frames=8,
            recipe="configs/convnext_tiny.yaml",
            train_set=(
                "pretrained=false",
                "epochs=1",
                "freeze_epochs=0",
                "warmup_epochs=0",
                "ema_decay=0.0",
                "backbone=test_convnext",
                "image_size=48",
                "batch_size=8",
                "num_workers=0",
            ),
            n_splits=2,
            compile_modes=(False,),
            bench_paths=DATA_PATHS,
        )


def bench_part(cfg: GpuCheckConfig, save=None) -> list[dict[str, Any]]:
    """Each backbone eager and compiled; `bench_paths` and the one-iterator lever in the last
    mode, the default path in the others; ratios against the compiled model-only bound. `save(rows)`
    after each backbone, so a call cut short by its time limit keeps what it measured."""
    from benchmarks.bench import BenchConfig, run_bench

    rows = []
    for backbone in cfg.backbones:
        results = {}
        for compiled in cfg.compile_modes:
            last = compiled == cfg.compile_modes[-1]
            bench = BenchConfig(
                backbone=backbone,
                image_size=cfg.bench_image_size,
                batch_size=cfg.bench_batch_size,
                n_images=cfg.bench_images,
                epochs=cfg.bench_epochs,
                bound_steps=cfg.bench_steps,
                compile=compiled,
                work_dir=str(Path(cfg.work_dir) / "bench"),
                data_paths=cfg.bench_paths if last else ("uint8",),
                in_row=last,
            )
            started = time.perf_counter()
            results[compiled] = run_bench(bench, note=lambda line: print(f"  {line}", flush=True))
            r = results[compiled]
            ratios = ", ".join(
                [f"{path} {p['e2e_train_ratio']:.2f}" for path, p in r["paths"].items()]
                + (
                    [f"{r['in_row']['data_path']} in a row {r['in_row']['e2e_train_ratio']:.2f}"]
                    if r["in_row"]
                    else []
                )
            )
            print(
                f"[bench {backbone} compile={compiled}] {time.perf_counter() - started:.0f} s;"
                f" training e2e / own bound: {ratios}",
                flush=True,
            )
        best = results[max(results)]  # the compiled run where there is one
        for compiled, r in results.items():
            for path, p in r["paths"].items():
                rows.append(
                    {
                        "backbone": backbone,
                        "compile": compiled,
                        "data_path": path,
                        "batch_size": r["batch_size"],
                        "workers": r["workers"],
                        "bound_train_img_s": r["bound_train_img_s"],
                        "e2e_train_img_s": p["e2e_train_img_s"],
                        "bound_infer_img_s": r["bound_infer_img_s"],
                        "e2e_infer_img_s": p["e2e_infer_img_s"],
                        "e2e_train_ratio": p["e2e_train_ratio"],
                        "e2e_infer_ratio": p["e2e_infer_ratio"],
                        "e2e_train_vs_compiled_bound": (
                            p["e2e_train_img_s"] / best["bound_train_img_s"]
                        ),
                        "e2e_infer_vs_compiled_bound": (
                            p["e2e_infer_img_s"] / best["bound_infer_img_s"]
                        ),
                        "per_worker_img_s": p["per_worker_img_s"],
                        "predicted_ceiling_img_s": p["predicted_ceiling_img_s"],
                        "transport_float32_img_s": r["transport_img_s"]["float32"],
                        "transport_uint8_img_s": r["transport_img_s"]["uint8"],
                        "decode_per_worker_img_s": r["decode_per_worker_img_s"],
                        **_in_row_figures(r["in_row"], path, best["bound_train_img_s"]),
                    }
                )
        if save is not None:
            save(rows)
    return rows


def _in_row_figures(in_row: dict[str, Any] | None, path: str, compiled_bound: float) -> dict:
    """The run's one-iterator-across-epochs figure, on the row of the path it measured."""
    if in_row is None or in_row["data_path"] != path:
        return {}
    return {
        "e2e_train_in_row_img_s": in_row["e2e_train_img_s"],
        "e2e_train_in_row_vs_compiled_bound": in_row["e2e_train_img_s"] / compiled_bound,
    }


def pipeline_part(cfg: GpuCheckConfig, log) -> dict[str, Any]:
    """The real-size job, stage by stage, as `make folds detect crops train ensemble submit`."""
    work = Path(cfg.work_dir) / "pipeline"
    shutil.rmtree(work, ignore_errors=True)
    data, runs = work / "data", work / "runs"
    timer = StageTimer(log=log)
    started = time.perf_counter()
    train, test = generated_tables(cfg.n_train, cfg.n_test, cfg.train_sites, cfg.test_sites)
    write_sized_folder(data, train, test, cfg.frame_width, cfg.frame_height, cfg.unique_frames)
    timer.stages["generate_data"] = {"seconds": round(time.perf_counter() - started, 2)}
    folds, detections, crops = work / "folds.csv", work / "detections.json", work / "crops"
    timer.run(
        "folds", "folds", "--data", data, "--out", folds, "--n-splits", cfg.n_splits, "--seed", 42
    )
    timer.run(
        "detect",
        "detect",
        "--data",
        data,
        "--detector",
        "megadetector-lite",
        "--weights",
        cfg.detector_weights,
        "--out",
        detections,
        "--num-workers",
        cfg.detect_workers,
    )
    timer.run(
        "crop",
        "crop",
        "--detections",
        detections,
        "--data",
        data,
        "--out",
        crops,
        "--thresholds",
        0.1,
        "--pad",
        0.1,
    )
    timer.run(
        "train",
        "train",
        "--config",
        cfg.recipe,
        "--name",
        "convnext_tiny",
        "--data",
        data,
        "--folds-file",
        folds,
        "--runs-dir",
        runs,
        "--quiet",
        "--set",
        f"crops_manifest={crops / 'manifest.csv'}",
        f"cache_dir={work / 'cache'}",
        *cfg.train_set,
    )
    timer.run(
        "ensemble",
        "ensemble",
        runs / "convnext_tiny",
        "--labels",
        data / TRAIN_LABELS,
        "--out",
        runs / "ensemble",
        "--data",
        data,
    )
    submission = work / "submission.csv"
    timer.run(
        "submit",
        "submit",
        "--predictions",
        runs / "ensemble" / "test.csv",
        "--format",
        data / SUBMISSION_FORMAT,
        "--out",
        submission,
    )
    timer.run("validate", "validate", submission, "--format", data / SUBMISSION_FORMAT)
    metrics = json.loads((runs / "convnext_tiny" / "metrics.json").read_text())
    return {
        "stages": timer.stages,
        "total_s": round(time.perf_counter() - started, 1),
        "images": cfg.n_train + cfg.n_test,
        "frame": f"{cfg.frame_width}x{cfg.frame_height}",
        "oof_rows": sum(1 for _ in open(runs / "convnext_tiny" / OOF_FILE)) - 1,
        "oof_log_loss": metrics["overall"]["log_loss"],
        "submission_valid": True,
    }


def gpu_check(cfg: GpuCheckConfig, parts: tuple[str, ...] = PARTS) -> dict:
    """Both parts; a failing stage is recorded in the result rather than losing the figures."""
    import torch

    result: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "host": platform.node(),
        "card": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "small": cfg.n_train < 1000,
    }
    Path(cfg.work_dir).mkdir(parents=True, exist_ok=True)
    if "bench" in parts:
        result["bench"] = bench_part(cfg, lambda rows: _save(cfg, {**result, "bench": rows}))
    if "pipeline" in parts:
        with open(Path(cfg.work_dir) / "pipeline.log", "w") as log:
            try:
                result["pipeline"] = pipeline_part(cfg, log)
            except StageFailed as err:
                result["pipeline_error"] = f"{err} (log: {log.name})"
    _save(cfg, result)
    return result


def _save(cfg: GpuCheckConfig, result: dict[str, Any]) -> None:
    (Path(cfg.work_dir) / "gpu_check.json").write_text(json.dumps(result, indent=1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.gpu_check", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--small",
        action="store_true",
        help="CPU-sized: tiny models and data, same stages (about a minute)",
    )
    parser.add_argument("--work-dir", default="gpu_check", help="generated data and outputs")
    parser.add_argument(
        "--weights", help=f"MegadetectorLite weights (default: SHARED/{DETECTOR_WEIGHTS})"
    )
    parser.add_argument(
        "--shared",
        help="the shared real-data folder (default: "
        "$KAGGLE_STYLE_SHARED_DATA); only for the default --weights",
    )
    parser.add_argument("--only", choices=PARTS, help="run one part")
    args = parser.parse_args(argv)
    return run_main(parser.prog, lambda: run(args))


def run(args: argparse.Namespace) -> int:
    parts = (args.only,) if args.only else PARTS
    cfg = GpuCheckConfig.small(args.work_dir) if args.small else GpuCheckConfig(args.work_dir)
    if "pipeline" in parts:
        weights = args.weights or str(shared_data(args.shared) / DETECTOR_WEIGHTS)
        if not Path(weights).is_file():
            raise UserError(f"{weights}: detector weights not found; pass --weights PATH")
        cfg = replace(cfg, detector_weights=weights)
    result = gpu_check(cfg, parts)
    print(json.dumps(result))
    return 0 if "pipeline_error" not in result else 1


if __name__ == "__main__":
    raise SystemExit(main())
