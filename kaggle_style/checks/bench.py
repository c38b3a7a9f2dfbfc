"""`kaggle-style bench`: how close the real data path comes to the model's own speed.

Throughput numbers from different runs (or machines, or neighbours on a shared box) cannot be
compared, so one run measures both sides and reports their ratio: the model-only bound (synthetic
tensors already on the device) against the trainer's own path from JPEGs on disk (`build_cache`,
`CachedImages`, the trainer's DataLoader settings, Accelerate, the same training step and the
same `predict`). It also measures what the cache buys per data-loader worker: decoding a full
960x540 frame against reading the cache, augmenting and collating.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, default_collate

from kaggle_style.checks.frames import make_frames
from kaggle_style.constants import CLASSES
from kaggle_style.data.images import build_cache, cache_size_for, decode_rgb
from kaggle_style.training.config import TrainConfig
from kaggle_style.training.data import (
    CachedImages,
    SeededSampler,
    batch_normalizer,
    default_workers,
    loader_kwargs,
    normalize_on_device,
)
from kaggle_style.training.inference import predict_probs
from kaggle_style.training.recipe import mixed_precision, optimisation_step


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
    normalize_on: str = "auto"  # as TrainConfig: uint8 batches normalised on a GPU
    seed: int = 0


def device_defaults(device: str) -> dict[str, Any]:
    """A 1-2 minute run on a 2-core CPU; on a GPU, a production model and batch, and epochs long
    enough (the real ones hold ~13k images) that each epoch's start-up does not dominate."""
    if device == "cuda":
        return {"backbone": "convnext_tiny", "image_size": 224, "batch_size": 128,
                "n_images": 8192, "epochs": 4, "bound_steps": 30, "unique_frames": 64}
    return {"backbone": "resnet18", "image_size": 96, "batch_size": 32, "n_images": 256,
            "epochs": 3, "bound_steps": 8, "unique_frames": 16}


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
    if out.n_images < out.batch_size:
        raise ValueError(f"n_images ({out.n_images}) must be at least batch_size "
                         f"({out.batch_size})")
    return out


# ---------------------------------------------------------------------------------- timing


def _sync(device: torch.device) -> None:
    """Wait for queued GPU work, so a timer measures work done rather than work launched."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run torch and OpenCV on one thread, as inside a data-loader worker; restore afterwards."""
    import cv2

    torch_threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        torch.set_num_threads(torch_threads)
        cv2.setNumThreads(cv2_threads)


def _timed(work: Callable[[], int]) -> tuple[int, float]:
    """(images, seconds) of `work`, which returns how many images it handled."""
    start = time.perf_counter()
    n = work()
    return n, max(time.perf_counter() - start, 1e-9)


def _rate(*parts: tuple[int, float]) -> float:
    """Images per second over timed parts (a bound is timed in two halves, before and after the
    end-to-end run, so that a neighbour's load that comes or goes weighs on both sides alike)."""
    return sum(n for n, _ in parts) / sum(s for _, s in parts)


# ------------------------------------------------------------------------------------ model


def _train_step(model, optimizer, accelerator, images: torch.Tensor, labels: torch.Tensor,
                channels_last: bool, normalize=None) -> torch.Tensor:
    """The trainer's own step (`optimisation_step`), with hard labels and unit class weights."""
    if normalize is not None:
        images = normalize(images)
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
    _sync(device)

    def work() -> int:
        for _ in range(steps):
            _train_step(model, optimizer, accelerator, images, labels, channels_last)
        _sync(device)
        return steps * cfg.batch_size

    return _timed(work)


def _bound_infer(model, accelerator, cfg: BenchConfig, channels_last: bool, steps: int,
                 warm_up: bool) -> tuple[int, float]:
    """Inference (images, seconds) of `predict` (same TTA) over batches already on the device."""
    device = accelerator.device
    batch = 2 * cfg.batch_size  # the trainer predicts with twice the training batch
    images = torch.randn(batch, 3, cfg.image_size, cfg.image_size, device=device)
    labels = torch.zeros(batch, dtype=torch.long, device=device)
    if warm_up:
        predict_probs(model, [(images, labels)] * 2, accelerator, cfg.tta_hflip, channels_last)
    _sync(device)

    def work() -> int:
        predict_probs(model, [(images, labels)] * steps, accelerator, cfg.tta_hflip, channels_last)
        _sync(device)
        return steps * batch

    return _timed(work)


# -------------------------------------------------------------------------------- data path


def _e2e_train(model, optimizer, accelerator, cfg: BenchConfig, paths: list[Path],
               cache_dir: Path, data_cfg: dict[str, Any], workers: int,
               channels_last: bool, normalize) -> dict[str, Any]:
    """Epoch 1 from JPEGs (cache build, worker start-up, training) and epochs 2+ from the cache."""
    from kaggle_style.data.transforms import train_transform

    device = accelerator.device
    size = cfg.image_size
    cache_size = cache_size_for(size, TrainConfig.cache_scale)
    n = len(paths)
    targets = np.arange(n) % len(CLASSES)
    _sync(device)
    start = time.perf_counter()
    # as prepare_data: a process pool only pays off for more than a few hundred images
    cache_workers = max(1, workers) if n > 256 else 0
    cache = build_cache(paths, cache_size, cache_dir, cache_workers, progress=False,
                        desc="bench cache")
    cache_s = time.perf_counter() - start
    dataset = CachedImages(cache.pixels_file, np.arange(n), targets,
                           train_transform(data_cfg, cfg.augment,
                                           normalize=normalize is None))
    loader = accelerator.prepare(DataLoader(
        dataset, batch_size=cfg.batch_size, sampler=SeededSampler(n, seed=cfg.seed),
        drop_last=n > cfg.batch_size, **loader_kwargs(workers, device.type == "cuda"),
    ))
    seconds, images = [], []
    model.train()
    for epoch in range(cfg.epochs):
        if epoch:
            start = time.perf_counter()
        loader.set_epoch(epoch)
        seen = 0
        for batch, labels in loader:
            _train_step(model, optimizer, accelerator, batch, labels, channels_last, normalize)
            seen += len(labels)
        _sync(device)
        seconds.append(time.perf_counter() - start)
        images.append(seen)
    return {"cache": cache, "cache_build_s": cache_s,
            "first_epoch_img_s": images[0] / seconds[0],
            "later_img_s": sum(images[1:]) / sum(seconds[1:])}


def _e2e_infer(model, accelerator, cfg: BenchConfig, cache, data_cfg: dict[str, Any],
               workers: int, channels_last: bool, normalize) -> float:
    """`predict` over the cache with the trainer's test loader; steady state (second pass when
    workers start up, which the trainer's persistent loaders pay once per fold)."""
    from kaggle_style.data.transforms import eval_transform

    device = accelerator.device
    n = len(cache.ok)
    dataset = CachedImages(cache.pixels_file, np.arange(n), np.full(n, -1),
                           eval_transform(data_cfg, normalize=normalize is None))
    loader = accelerator.prepare(DataLoader(
        dataset, batch_size=2 * cfg.batch_size, **loader_kwargs(workers, device.type == "cuda")
    ))
    if workers:
        predict_probs(model, loader, accelerator, cfg.tta_hflip, channels_last,
                      normalize=normalize)
    _sync(device)

    def work() -> int:
        probs = predict_probs(model, loader, accelerator, cfg.tta_hflip, channels_last,
                              normalize=normalize)
        _sync(device)
        return len(probs)

    return _rate(_timed(work))


def per_worker_rates(cfg: BenchConfig, paths: list[Path], cache, data_cfg: dict[str, Any],
                     n_decode: int, n_cached: int) -> tuple[float, float, float]:
    """Images/s of one process on one thread: decoding full frames vs the cached path.

    Decode is what every epoch would cost without the cache: a plain PIL decode of the full frame
    and a resize (the cache's own decode uses JPEG draft scaling, faster still: see
    `cache_build_s`); the cached path is what a training worker does per batch (memmap read,
    augmentation, to-tensor, collate).
    """
    from kaggle_style.data.transforms import train_transform

    n = len(cache.ok)
    datasets = [CachedImages(cache.pixels_file, np.arange(n), np.arange(n) % len(CLASSES),
                             train_transform(data_cfg, cfg.augment, normalize=in_worker))
                for in_worker in (True, False)]
    sampler = SeededSampler(n, seed=cfg.seed + 1)
    items = [item for _, item in zip(range(n_cached), _cycle(sampler), strict=False)]

    def decode() -> int:
        for i in range(n_decode):
            full = Image.fromarray(decode_rgb(paths[i % len(paths)]))
            full.resize((cache.size, cache.size), Image.Resampling.BILINEAR)
        return n_decode

    def cached(dataset: CachedImages) -> Callable[[], int]:
        def work() -> int:
            for start in range(0, len(items), cfg.batch_size):
                default_collate([dataset[item] for item in items[start:start + cfg.batch_size]])
            return len(items)

        return work

    with single_threaded():
        for dataset in datasets:
            dataset[items[0]]  # open the memmap outside the timer, as a worker does once
        return (_rate(_timed(decode)), *(_rate(_timed(cached(d))) for d in datasets))


def _cycle(sampler: SeededSampler) -> Iterator[tuple[int, int]]:
    epoch = 0
    while True:
        sampler.set_epoch(epoch)
        yield from sampler
        epoch += 1


# ------------------------------------------------------------------------------------- run


def run_bench(cfg: BenchConfig) -> dict[str, Any]:
    """Every figure of one run, with ratios computed from the unrounded numbers."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    from kaggle_style.models import create_model, data_config

    cfg = resolve(cfg)
    use_cuda = cfg.device == "cuda"
    # neighbours' load and torch's thread count explain most odd CPU figures: record both
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    workers = default_workers(TrainConfig(num_workers=cfg.workers))
    paths = make_frames(cfg)
    accelerator = Accelerator(mixed_precision=mixed_precision("auto", use_cuda), cpu=not use_cuda)
    set_seed(cfg.seed)
    model = create_model(cfg.backbone, len(CLASSES), image_size=cfg.image_size)
    data_cfg = data_config(model, cfg.image_size)
    channels_last = use_cuda  # as the trainer: channels_last pays on GPUs, not on CPUs
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    on_device = normalize_on_device(cfg.normalize_on, use_cuda)
    normalize = batch_normalizer(data_cfg, True, accelerator.device) if on_device else None
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
    Path(cfg.work_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cfg.work_dir, prefix="cache-") as cache_dir:
        train = _e2e_train(model, optimizer, accelerator, cfg, paths, Path(cache_dir), data_cfg,
                           workers, channels_last, normalize)
        e2e_infer = _e2e_infer(model, accelerator, cfg, train["cache"], data_cfg, workers,
                               channels_last, normalize)
        bound_train_parts.append(_bound_train(model, optimizer, accelerator, cfg, channels_last,
                                              train_steps[1], warm_up=False))
        bound_infer_parts.append(_bound_infer(model, accelerator, cfg, channels_last,
                                              infer_steps[1], warm_up=False))
        bound_train, bound_infer = _rate(*bound_train_parts), _rate(*bound_infer_parts)
        decode, cached, cached_uint8 = per_worker_rates(
            cfg, paths, train["cache"], data_cfg,
            n_decode=min(len(paths), max(16, cfg.batch_size)),
            n_cached=max(256, 4 * cfg.batch_size),
        )
        del train["cache"]  # drop the memmap before its folder goes

    return {
        "device": cfg.device,
        "gpu_name": torch.cuda.get_device_name() if use_cuda else None,
        "cpu_count": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
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
        "e2e_train_first_epoch_img_s": train["first_epoch_img_s"],
        "e2e_train_img_s": train["later_img_s"],
        "cache_build_s": train["cache_build_s"],
        "bound_infer_img_s": bound_infer,
        "e2e_infer_img_s": e2e_infer,
        "decode_per_worker_img_s": decode,
        "cached_per_worker_img_s": cached,
        "cached_uint8_per_worker_img_s": cached_uint8,
        "normalize_on": "device" if normalize is not None else "worker",
        "e2e_train_first_epoch_ratio": train["first_epoch_img_s"] / bound_train,
        "e2e_train_ratio": train["later_img_s"] / bound_train,
        "e2e_infer_ratio": e2e_infer / bound_infer,
        "cached_vs_decode_ratio": cached / decode,
        "cached_uint8_vs_float_ratio": cached_uint8 / cached,
    }
