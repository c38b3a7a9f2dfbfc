"""`python -m benchmarks.bench`: how close the real data path comes to the model's own speed.

Throughput numbers from different runs (or machines, or neighbours on a shared box) cannot be
compared, so one run measures both sides and reports their ratio: the model-only bound (synthetic
tensors already on the device) against the trainer's own path from JPEGs on disk (`build_cache`,
`CachedImages`, the trainer's DataLoader settings, Accelerate, the same training step and the
same `predict`). It also measures what the cache buys per data-loader worker: decoding a full
960x540 frame against reading the cache, augmenting and collating.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F

from benchmarks.common import run_main
from benchmarks.data_path import DATA_PATHS, data_side, path_figures, rate, sync, timed
from benchmarks.frames import make_frames
from kaggle_style.config import stage_config
from kaggle_style.files import usable_cpus
from kaggle_style.task import CONSERVISION_CLASSES as CLASSES
from kaggle_style.training.config import TrainConfig
from kaggle_style.training.data import default_workers
from kaggle_style.training.inference import predict_probs
from kaggle_style.training.recipe import accelerator_settings, optimisation_step


@stage_config(frozen=True)
class BenchConfig:
    """What to measure; fields left None take the device's defaults (`device_defaults`)."""

    backbone: str | None = None
    image_size: int | None = None
    batch_size: int | None = None
    n_images: int | None = None  # JPEG files: one training epoch and one inference pass
    workers: int = -1  # data-loader workers; -1: the trainer's choice for this machine
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compile: bool = False
    epochs: int | None = None  # end-to-end epochs: the first builds the cache, the rest reuse it
    bound_steps: int | None = None  # timed steps of the model-only bound (after warm-up)
    tta_hflip: bool = True  # as the trainer's default: inference bound and e2e both use it
    augment: str = TrainConfig.augment
    work_dir: str = "cache/bench"  # generated frames live here (reused); the cache is temporary
    frame_width: int = 960
    frame_height: int = 540
    unique_frames: int | None = None  # rendered frames, written as `n_images` files in turn
    data_paths: tuple[str, ...] | None = None  # `checks.data_path.DATA_PATHS`; None: default
    in_row: bool = True  # the first path's training again with one iterator across the epochs
    seed: int = 0


# One training fold's epoch on the real data: 16,488 x 4/5 rows in whole batches of 128. Each
# epoch pays a fixed start-up (every worker's first batch), so a shorter epoch understates the
# real job's ratio (benchmarks/results/gpu_check_h100_2026-11-27.json).
REAL_FOLD_EPOCH_IMAGES = 13_184


def device_defaults(device: str) -> dict[str, Any]:
    """A 1-2 minute run on a 2-core CPU; on a GPU, a production model and batch, and the real
    job's epoch length (`REAL_FOLD_EPOCH_IMAGES`)."""
    if device == "cuda":
        return {
            "backbone": "convnext_tiny",
            "image_size": 224,
            "batch_size": 128,
            "n_images": REAL_FOLD_EPOCH_IMAGES,
            "epochs": 3,
            "bound_steps": 30,
            "unique_frames": 64,
            "data_paths": DATA_PATHS,
        }
    return {
        "backbone": "resnet18",
        "image_size": 96,
        "batch_size": 32,
        "n_images": 256,
        "epochs": 3,
        "bound_steps": 8,
        "unique_frames": 16,
        "data_paths": ("float",),
    }


def resolve(cfg: BenchConfig) -> BenchConfig:
    """`cfg` with the device chosen and every None replaced by that device's default."""
    device = cfg.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda, but torch sees no CUDA device")
    filled = {k: v for k, v in device_defaults(device).items() if getattr(cfg, k) is None}
    out = replace(cfg, device=device, **filled)
    if out.epochs < 2:
        raise ValueError("epochs must be at least 2: the first includes the cache build")
    unknown = sorted(set(out.data_paths) - set(DATA_PATHS))
    if unknown or not out.data_paths:
        raise ValueError(f"data paths must be among {', '.join(DATA_PATHS)}, not {unknown}")
    if out.n_images < out.batch_size:
        raise ValueError(
            f"n_images ({out.n_images}) must be at least batch_size ({out.batch_size})"
        )
    return out


# ------------------------------------------------------------------------------------ model


def _train_step(
    model, optimizer, accelerator, images: torch.Tensor, labels: torch.Tensor, channels_last: bool
) -> torch.Tensor:
    """The trainer's own step (`optimisation_step`), with hard labels and unit class weights."""
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    soft = F.one_hot(labels, len(CLASSES)).float()
    return optimisation_step(
        model, optimizer, accelerator, images, soft, soft.new_ones(len(CLASSES))
    )


def _bound_train(
    model, optimizer, accelerator, cfg: BenchConfig, channels_last: bool, steps: int, warm_up: bool
) -> tuple[int, float]:
    """Training (images, seconds) with the batch already on the device: nothing waits for data."""
    device = accelerator.device
    size = cfg.image_size
    images = torch.randn(cfg.batch_size, 3, size, size, device=device)
    labels = torch.randint(0, len(CLASSES), (cfg.batch_size,), device=device)
    model.train()
    for _ in range(max(2, cfg.bound_steps // 3) if warm_up else 0):  # allocator, kernels, compile
        _train_step(model, optimizer, accelerator, images, labels, channels_last)
    sync(device)

    def work() -> int:
        for _ in range(steps):
            _train_step(model, optimizer, accelerator, images, labels, channels_last)
        sync(device)
        return steps * cfg.batch_size

    return timed(work)


def _bound_infer(
    model, accelerator, cfg: BenchConfig, channels_last: bool, steps: int, warm_up: bool
) -> tuple[int, float]:
    """Inference (images, seconds) of `predict` (same TTA) over batches already on the device."""
    device = accelerator.device
    batch = 2 * cfg.batch_size  # the trainer predicts with twice the training batch
    images = torch.randn(batch, 3, cfg.image_size, cfg.image_size, device=device)
    labels = torch.zeros(batch, dtype=torch.long, device=device)
    if warm_up:
        predict_probs(model, [(images, labels)] * 2, accelerator, cfg.tta_hflip, channels_last)
    sync(device)

    def work() -> int:
        predict_probs(model, [(images, labels)] * steps, accelerator, cfg.tta_hflip, channels_last)
        sync(device)
        return steps * batch

    return timed(work)


# ------------------------------------------------------------------------------------- run


def run_bench(cfg: BenchConfig, note: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Every figure of one run, with ratios computed from the unrounded numbers. `note` gets a
    line as each figure is measured, so a run cut short by a time limit still tells them."""
    note = note or (lambda line: None)
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    from kaggle_style.models import create_model, data_config

    cfg = resolve(cfg)
    use_cuda = cfg.device == "cuda"
    # neighbours' load and torch's thread count explain most odd CPU figures: record both
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    workers = default_workers(TrainConfig(num_workers=cfg.workers))
    paths = make_frames(cfg)
    accelerator = Accelerator(**accelerator_settings(use_cuda))
    set_seed(cfg.seed)
    model = create_model(cfg.backbone, len(CLASSES), image_size=cfg.image_size)
    data_cfg = data_config(model, cfg.image_size)
    channels_last = use_cuda  # as the trainer: channels_last pays on GPUs, not on CPUs
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05, fused=use_cuda)
    model, optimizer = accelerator.prepare(model, optimizer)
    if cfg.compile:
        model = torch.compile(model)

    train_steps = (cfg.bound_steps + 1) // 2, cfg.bound_steps // 2 or 1
    infer_steps = max(1, cfg.bound_steps // 4), max(1, cfg.bound_steps // 4)
    bound_train_parts = [
        _bound_train(
            model, optimizer, accelerator, cfg, channels_last, train_steps[0], warm_up=True
        )
    ]
    bound_infer_parts = [
        _bound_infer(model, accelerator, cfg, channels_last, infer_steps[0], warm_up=True)
    ]
    note(
        f"bounds, first half: training {rate(bound_train_parts[0]):.1f}, inference "
        f"{rate(bound_infer_parts[0]):.1f} images/s"
    )

    def step(images: torch.Tensor, labels: torch.Tensor) -> None:
        _train_step(model, optimizer, accelerator, images, labels, channels_last)

    Path(cfg.work_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cfg.work_dir, prefix="cache-") as cache_dir:
        side = data_side(
            cfg,
            step,
            model,
            accelerator,
            paths,
            Path(cache_dir),
            data_cfg,
            workers,
            channels_last,
            note,
        )
    bound_train_parts.append(
        _bound_train(
            model, optimizer, accelerator, cfg, channels_last, train_steps[1], warm_up=False
        )
    )
    bound_infer_parts.append(
        _bound_infer(model, accelerator, cfg, channels_last, infer_steps[1], warm_up=False)
    )
    bound_train, bound_infer = rate(*bound_train_parts), rate(*bound_infer_parts)
    figures = path_figures(side, workers, bound_train, bound_infer)
    best = max(figures, key=lambda name: figures[name]["e2e_train_img_s"])
    in_row = side.get("in_row")
    if in_row is not None:
        per_epoch_iterators = figures[in_row["data_path"]]["e2e_train_img_s"]
        in_row = {
            **in_row,
            "e2e_train_ratio": in_row["e2e_train_img_s"] / bound_train,
            "vs_new_iterator_each_epoch": in_row["e2e_train_img_s"] / per_epoch_iterators,
        }
    return {
        "device": cfg.device,
        "gpu_name": torch.cuda.get_device_name() if use_cuda else None,
        "cpu_count": usable_cpus(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_avg_1m": load,
        "date": dt.date.today().isoformat(),
        "backbone": cfg.backbone,
        "image_size": cfg.image_size,
        "batch_size": cfg.batch_size,
        "infer_batch_size": 2 * cfg.batch_size,
        "n_images": cfg.n_images,
        "frame_size": f"{cfg.frame_width}x{cfg.frame_height}",
        "workers": workers,
        "epochs": cfg.epochs,
        "precision": "bf16" if use_cuda else "fp32",
        "channels_last": channels_last,
        "compile": cfg.compile,
        "augment": cfg.augment,
        "tta_hflip": cfg.tta_hflip,
        "bound_train_img_s": bound_train,
        "bound_infer_img_s": bound_infer,
        "cache_build_s": side["cache_build_s"],
        "decode_per_worker_img_s": side["decode_per_worker_img_s"],
        "transport_workers": side["transport_workers"],
        "transport_img_s": side["transport_img_s"],
        "transport_uint8_vs_float32": (
            side["transport_img_s"]["uint8"] / side["transport_img_s"]["float32"]
        ),
        "paths": figures,
        "in_row": in_row,
        "best_path": best,
        "e2e_train_img_s": figures[best]["e2e_train_img_s"],
        "e2e_infer_img_s": max(p["e2e_infer_img_s"] for p in figures.values()),
        "e2e_train_ratio": figures[best]["e2e_train_ratio"],
        "e2e_infer_ratio": max(p["e2e_infer_ratio"] for p in figures.values()),
    }


# ------------------------------------------------------------------------------ command


def parser() -> argparse.ArgumentParser:
    out = argparse.ArgumentParser(
        prog="python -m benchmarks.bench", description=__doc__.splitlines()[0]
    )
    add_arguments(out)
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backbone", help="timm model (default: resnet18 on CPU, convnext_tiny on CUDA)"
    )
    parser.add_argument("--image-size", type=int, help="default: 96 on CPU, 224 on CUDA")
    parser.add_argument("--batch-size", type=int, help="default: 32 on CPU, 128 on CUDA")
    parser.add_argument(
        "--n-images",
        type=int,
        help="JPEGs per epoch (default: 256 on CPU; on CUDA 13,184, one real training fold)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=-1,
        help="data-loader workers (default: the trainer's choice)",
    )
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument(
        "--data-paths",
        nargs="+",
        choices=DATA_PATHS,
        help="float: workers augment and normalise; uint8: uint8 batches "
        "normalised on the device; uint8+device_augment: flips and jitter "
        "on the device too (default: all three on a GPU, float on a CPU)",
    )
    parser.add_argument("--epochs", type=int, help="end-to-end epochs, at least 2 (default 3)")
    parser.add_argument(
        "--no-tta",
        dest="tta_hflip",
        action="store_false",
        help="inference without the horizontal-flip TTA",
    )
    parser.add_argument(
        "--frame-size",
        type=_frame_size,
        default=(960, 540),
        metavar="WxH",
        help="size of the generated JPEGs (default 960x540, the real frames')",
    )
    parser.add_argument(
        "--work-dir",
        default=BenchConfig.work_dir,
        help="where generated frames are kept between runs",
    )
    parser.add_argument(
        "--json", action="store_true", help="end with one line of JSON holding every figure"
    )


def _frame_size(text: str) -> tuple[int, int]:
    width, sep, height = text.lower().partition("x")
    if not (sep and width.isdigit() and height.isdigit()) or min(int(width), int(height)) < 32:
        raise argparse.ArgumentTypeError(f"{text!r} is not WxH with both sides at least 32")
    return int(width), int(height)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return run_main("python -m benchmarks.bench", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    cfg = BenchConfig(
        backbone=args.backbone,
        image_size=args.image_size,
        batch_size=args.batch_size,
        n_images=args.n_images,
        workers=args.workers,
        device=args.device,
        compile=args.compile,
        epochs=args.epochs,
        tta_hflip=args.tta_hflip,
        data_paths=tuple(args.data_paths) if args.data_paths else None,
        work_dir=args.work_dir,
        frame_width=args.frame_size[0],
        frame_height=args.frame_size[1],
    )
    # each figure on stderr as it is measured: a run cut short by a time limit still tells them
    result = run_bench(cfg, note=lambda line: print(line, file=sys.stderr, flush=True))
    print(format_table(result))
    if args.json:
        print(json.dumps(result))
    return 0


NAME_WIDTH = 64  # the table's first column: the longest row name fits


def format_table(result: dict[str, Any]) -> str:
    """The human-readable report: each data path's end-to-end figures beside the bounds, then
    what could cap them (per-worker rates, the transport of ready batches)."""
    r = result
    where = r["gpu_name"] or f"{r['cpu_count']} CPU cores"
    tta = "hflip TTA" if r["tta_hflip"] else "no TTA"
    rows = [
        ("model-only training (bound)", r["bound_train_img_s"], ""),
        (f"model-only inference, {tta} (bound)", r["bound_infer_img_s"], ""),
    ]
    for name, p in r["paths"].items():
        rows += [
            (
                f"[{name}] e2e training, epochs 2+",
                p["e2e_train_img_s"],
                f"{p['e2e_train_ratio']:.2f} of bound",
            ),
            (
                f"[{name}] e2e inference, {tta}",
                p["e2e_infer_img_s"],
                f"{p['e2e_infer_ratio']:.2f} of bound",
            ),
            (f"[{name}] per worker (cache, transform, collate)", p["per_worker_img_s"], ""),
            (
                f"[{name}] predicted ceiling",
                p["predicted_ceiling_img_s"],
                f"{p['predicted_ceiling_vs_train_bound']:.2f} of training bound",
            ),
        ]
    in_row = r["in_row"]
    if in_row is not None:
        rows.append(
            (
                f"[{in_row['data_path']}] e2e training, one iterator across epochs",
                in_row["e2e_train_img_s"],
                f"{in_row['e2e_train_ratio']:.2f} of bound, "
                f"{in_row['vs_new_iterator_each_epoch']:.2f}x a new one each epoch",
            )
        )
    transport = r["transport_img_s"]
    rows += [
        (f"per worker: decode {r['frame_size']} JPEG + resize", r["decode_per_worker_img_s"], ""),
        (
            f"transport, float32 batches ({r['transport_workers']} workers)",
            transport["float32"],
            "",
        ),
        (
            f"transport, uint8 batches ({r['transport_workers']} workers)",
            transport["uint8"],
            f"{r['transport_uint8_vs_float32']:.1f}x float32",
        ),
    ]
    lines = [
        f"bench {r['backbone']} @ {r['image_size']} px, batch {r['batch_size']} "
        f"(inference {r['infer_batch_size']}), {r['precision']}, {r['device']} ({where}), "
        f"{r['workers']} workers, {r['n_images']} images x {r['epochs']} epochs, "
        f"torch {r['torch']} ({r['torch_threads']} threads), load {r['load_avg_1m']:.1f}, "
        f"{r['date']}",
        f"{'':{NAME_WIDTH}}{'images/s':>10}",
    ]
    lines += [f"{name:{NAME_WIDTH}}{value:10.1f}  {note}".rstrip() for name, value, note in rows]
    lines.append(f"cache build: {r['cache_build_s']:.1f} s; best training path: {r['best_path']}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
