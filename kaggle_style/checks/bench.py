"""`kaggle-style bench`: how close the real data path comes to the model's own speed.

Throughput numbers from different runs (or machines, or neighbours on a shared box) cannot be
compared, so one run measures both sides and reports their ratio: the model-only bound (synthetic
tensors already on the device) against the trainer's own path from JPEGs on disk (`build_cache`,
`CachedImages`, the trainer's DataLoader settings, Accelerate, the same training step and the
same `predict`). It also measures what the cache buys per data-loader worker: decoding a full
960x540 frame against reading the cache, augmenting and collating.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from kaggle_style.checks.data_path import (
    DATA_PATHS,
    data_path,
    decode_rate,
    e2e_infer,
    e2e_train,
    e2e_train_in_row,
    rate,
    sync,
    timed,
    transport_rate,
    worker_rate,
)
from kaggle_style.checks.frames import make_frames
from kaggle_style.constants import CLASSES
from kaggle_style.data.images import build_cache, cache_size_for
from kaggle_style.io import usable_cpus
from kaggle_style.training.config import TrainConfig
from kaggle_style.training.data import default_workers
from kaggle_style.training.inference import predict_probs
from kaggle_style.training.recipe import accelerator_settings, optimisation_step


@dataclass(frozen=True)
class BenchConfig:
    """What to measure; fields left None take the device's defaults (`device_defaults`)."""

    backbone: str | None = None
    image_size: int | None = None
    batch_size: int | None = None
    n_images: int | None = None  # JPEG files: one training epoch and one inference pass
    workers: int = -1  # data-loader workers; -1: the trainer's choice for this machine
    device: str = "auto"  # auto | cpu | cuda
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
# epoch pays a fixed start-up (every worker's first batch), so shorter epochs understate the
# real job: on the H100 convnext_tiny reached 0.81 of its bound at 4,096 images, 0.89 at this.
REAL_FOLD_EPOCH_IMAGES = 13_184


def device_defaults(device: str) -> dict[str, Any]:
    """A 1-2 minute run on a 2-core CPU; on a GPU, a production model and batch, and the real
    job's epoch length (`REAL_FOLD_EPOCH_IMAGES`)."""
    if device == "cuda":
        return {"backbone": "convnext_tiny", "image_size": 224, "batch_size": 128,
                "n_images": REAL_FOLD_EPOCH_IMAGES, "epochs": 3, "bound_steps": 30,
                "unique_frames": 64,
                "data_paths": DATA_PATHS}
    return {"backbone": "resnet18", "image_size": 96, "batch_size": 32, "n_images": 256,
            "epochs": 3, "bound_steps": 8, "unique_frames": 16, "data_paths": ("float",)}


def resolve(cfg: BenchConfig) -> BenchConfig:
    """`cfg` with the device chosen and every None replaced by that device's default."""
    device = cfg.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, not {cfg.device!r}")
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
        raise ValueError(f"n_images ({out.n_images}) must be at least batch_size "
                         f"({out.batch_size})")
    return out


# ---------------------------------------------------------------------------------- timing


# ------------------------------------------------------------------------------------ model


def _train_step(model, optimizer, accelerator, images: torch.Tensor, labels: torch.Tensor,
                channels_last: bool) -> torch.Tensor:
    """The trainer's own step (`optimisation_step`), with hard labels and unit class weights."""
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    soft = F.one_hot(labels, len(CLASSES)).float()
    return optimisation_step(model, optimizer, accelerator, images, soft,
                             soft.new_ones(len(CLASSES)))


def _bound_train(model, optimizer, accelerator, cfg: BenchConfig, channels_last: bool,
                 steps: int, warm_up: bool) -> tuple[int, float]:
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


def _bound_infer(model, accelerator, cfg: BenchConfig, channels_last: bool, steps: int,
                 warm_up: bool) -> tuple[int, float]:
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


def _data_side(cfg: BenchConfig, model, optimizer, accelerator, paths: list[Path],
               cache_dir: Path, data_cfg: dict[str, Any], workers: int,
               channels_last: bool, note: Callable[[str], None]) -> dict[str, Any]:
    """The cache build, then each data path's end-to-end rates and per-worker rate (the first
    path's training also with one iterator across the epochs), then the transport of ready
    float32 and uint8 batches."""
    device = accelerator.device
    cache_size = cache_size_for(cfg.image_size, TrainConfig.cache_scale)
    n = len(paths)
    # as prepare_data: a process pool only pays off for more than a few hundred images
    start = time.perf_counter()
    cache = build_cache(paths, cache_size, cache_dir, max(1, workers) if n > 256 else 0,
                        progress=False, desc="bench cache")
    out: dict[str, Any] = {"cache_build_s": time.perf_counter() - start, "paths": {}}
    note(f"cache of {n} images built in {out['cache_build_s']:.1f} s")
    n_items = max(256, 4 * cfg.batch_size)

    def step(images: torch.Tensor, labels: torch.Tensor) -> None:
        _train_step(model, optimizer, accelerator, images, labels, channels_last)

    for name in cfg.data_paths:
        path = data_path(name, data_cfg, cfg.augment, device)
        model.train()
        train = e2e_train(step, accelerator, path, cache.pixels_file, n, cfg.batch_size,
                          cfg.epochs, workers, cfg.seed)
        note(f"[{name}] e2e training {train:.1f} images/s")
        if cfg.in_row and name == cfg.data_paths[0]:  # the next lever, beside what it replaces
            in_row = e2e_train_in_row(step, accelerator, path, cache.pixels_file, n,
                                      cfg.batch_size, cfg.epochs, workers, cfg.seed)
            out["in_row"] = {"data_path": name, "e2e_train_img_s": in_row}
            note(f"[{name}] e2e training, one iterator across epochs {in_row:.1f} images/s")
        infer = e2e_infer(model, accelerator, path, cache.pixels_file, n, 2 * cfg.batch_size,
                          workers, cfg.tta_hflip, channels_last)
        out["paths"][name] = {
            "e2e_train_img_s": train, "e2e_infer_img_s": infer,
            "per_worker_img_s": worker_rate(path, cache.pixels_file, n, n_items,
                                            cfg.batch_size, cfg.seed + 1),
        }
        note(f"[{name}] e2e inference {infer:.1f}, per worker "
             f"{out['paths'][name]['per_worker_img_s']:.1f} images/s")
    out["decode_per_worker_img_s"] = decode_rate(paths, cache_size,
                                                 min(n, max(16, cfg.batch_size)))
    out["transport_workers"] = max(1, workers)
    out["transport_img_s"] = {
        str(dtype).removeprefix("torch."): transport_rate(
            dtype, cfg.image_size, cfg.batch_size, max(1, workers), device,
            batches=max(8, 4 * max(1, workers)))
        for dtype in (torch.float32, torch.uint8)
    }
    note(f"transport: float32 {out['transport_img_s']['float32']:.1f}, uint8 "
         f"{out['transport_img_s']['uint8']:.1f} images/s")
    return out


def _path_figures(side: dict[str, Any], workers: int, bound_train: float,
                  bound_infer: float) -> dict[str, dict[str, float]]:
    """Each path's ratios, and the ceiling its parts predict: the slower of what the workers
    can make and what the transport can carry (float32 batches for `float`, else uint8)."""
    out = {}
    for name, p in side["paths"].items():
        transport = side["transport_img_s"]["float32" if name == "float" else "uint8"]
        ceiling = min(transport, max(1, workers) * p["per_worker_img_s"])
        out[name] = {**p, "e2e_train_ratio": p["e2e_train_img_s"] / bound_train,
                     "e2e_infer_ratio": p["e2e_infer_img_s"] / bound_infer,
                     "predicted_ceiling_img_s": ceiling,
                     "predicted_ceiling_vs_train_bound": ceiling / bound_train}
    return out


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
    bound_train_parts = [_bound_train(model, optimizer, accelerator, cfg, channels_last,
                                      train_steps[0], warm_up=True)]
    bound_infer_parts = [_bound_infer(model, accelerator, cfg, channels_last, infer_steps[0],
                                      warm_up=True)]
    note(f"bounds, first half: training {rate(bound_train_parts[0]):.1f}, inference "
         f"{rate(bound_infer_parts[0]):.1f} images/s")
    Path(cfg.work_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cfg.work_dir, prefix="cache-") as cache_dir:
        side = _data_side(cfg, model, optimizer, accelerator, paths, Path(cache_dir), data_cfg,
                          workers, channels_last, note)
    bound_train_parts.append(_bound_train(model, optimizer, accelerator, cfg, channels_last,
                                          train_steps[1], warm_up=False))
    bound_infer_parts.append(_bound_infer(model, accelerator, cfg, channels_last,
                                          infer_steps[1], warm_up=False))
    bound_train, bound_infer = rate(*bound_train_parts), rate(*bound_infer_parts)
    path_figures = _path_figures(side, workers, bound_train, bound_infer)
    best = max(path_figures, key=lambda name: path_figures[name]["e2e_train_img_s"])
    in_row = side.get("in_row")
    if in_row is not None:
        per_epoch_iterators = path_figures[in_row["data_path"]]["e2e_train_img_s"]
        in_row = {**in_row, "e2e_train_ratio": in_row["e2e_train_img_s"] / bound_train,
                  "vs_new_iterator_each_epoch": in_row["e2e_train_img_s"] / per_epoch_iterators}
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
        "transport_uint8_vs_float32": (side["transport_img_s"]["uint8"]
                                       / side["transport_img_s"]["float32"]),
        "paths": path_figures,
        "in_row": in_row,
        "best_path": best,
        "e2e_train_img_s": path_figures[best]["e2e_train_img_s"],
        "e2e_infer_img_s": max(p["e2e_infer_img_s"] for p in path_figures.values()),
        "e2e_train_ratio": path_figures[best]["e2e_train_ratio"],
        "e2e_infer_ratio": max(p["e2e_infer_ratio"] for p in path_figures.values()),
    }
