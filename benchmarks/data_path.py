"""The data side of `bench`: the trainer's loaders over one cache, for each way of feeding a batch.

Three data paths, the levers of the GPU check (docs/how-to/gpu-check.md):
- `float`: the workers augment and normalise; float32 batches (the trainer's choice on a CPU);
- `uint8`: the workers augment; uint8 batches normalised on the device (the GPU default);
- `uint8+device_augment`: the workers only resize; flips, jitter and normalisation on the device
  (`augment_on: device`).
Besides the end-to-end rates it measures the two things that can cap them without the model:
each worker's own rate, and the transport of ready batches from the workers into the main
process (shared memory, then the pin-memory copy) for float32 and uint8 batches.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import BatchSampler, DataLoader, Dataset, Sampler, default_collate

from kaggle_style.data.images import build_cache, cache_size_for, decode_rgb
from kaggle_style.task import CONSERVISION_CLASSES as CLASSES
from kaggle_style.training.config import TrainConfig
from kaggle_style.training.data import (
    CachedImages,
    SeededSampler,
    batch_normalizer,
    loader_kwargs,
    worker_transforms,
)
from kaggle_style.training.device_augment import DeviceAugment
from kaggle_style.training.inference import predict_probs

if TYPE_CHECKING:
    from benchmarks.bench import BenchConfig

DATA_PATHS = ("float", "uint8", "uint8+device_augment")


@dataclass(frozen=True)
class DataPath:
    """What the workers do and what the device does for one data path."""

    name: str
    train_transform: Any
    eval_transform: Any
    normalize: Callable[[torch.Tensor], torch.Tensor]
    augment: DeviceAugment | None


def data_path(name: str, data_cfg: dict[str, Any], augment: str, device) -> DataPath:
    """The trainer's own choices (`worker_transforms`, `batch_normalizer`) for this path."""
    if name not in DATA_PATHS:
        raise ValueError(f"data path must be one of {', '.join(DATA_PATHS)}, not {name!r}")
    on_device = name != "float"
    augment_on = "device" if name == "uint8+device_augment" else "worker"
    train, evaluation = worker_transforms(data_cfg, augment, 1.0, not on_device, augment_on)
    return DataPath(
        name=name,
        train_transform=train,
        eval_transform=evaluation,
        normalize=batch_normalizer(data_cfg, on_device, device),
        augment=DeviceAugment(augment) if augment_on == "device" else None,
    )


class EpochsInRow(Sampler):
    """The batches of epochs `first`..`last - 1` in a row, each exactly as a loader over
    `sampler` batches that epoch alone: one iterator crosses the epoch boundaries, so the
    workers prefetch the next epoch's first batches instead of restarting at every epoch (the
    lever the bench measures beside the trainer's per-epoch loop)."""

    def __init__(self, sampler: SeededSampler, batch_size: int, first: int, last: int) -> None:
        self.sampler, self.first, self.last = sampler, first, last
        self.per_epoch = BatchSampler(sampler, batch_size, drop_last=len(sampler) > batch_size)

    def __len__(self) -> int:
        return (self.last - self.first) * len(self.per_epoch)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for epoch in range(self.first, self.last):
            self.sampler.set_epoch(epoch)
            yield from self.per_epoch


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so a timer measures work done rather than work launched."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(work: Callable[[], int]) -> tuple[int, float]:
    """(images, seconds) of `work`, which returns how many images it handled."""
    start = time.perf_counter()
    n = work()
    return n, max(time.perf_counter() - start, 1e-9)


def rate(*parts: tuple[int, float]) -> float:
    """Images per second over timed parts (a bound is timed in two halves, before and after the
    end-to-end run, so that a neighbour's load that comes or goes weighs on both sides alike)."""
    return sum(n for n, _ in parts) / sum(s for _, s in parts)


def e2e_train(
    step: Callable[[torch.Tensor, torch.Tensor], None],
    accelerator,
    path: DataPath,
    pixels_file: Path,
    n: int,
    batch_size: int,
    epochs: int,
    workers: int,
    seed: int,
) -> float:
    """Images/s of training over the cache, epochs after the first (which starts the workers);
    a new iterator each epoch, as the trainer's loop."""
    device = accelerator.device
    sampler = SeededSampler(n, seed=seed)
    loader = accelerator.prepare(
        DataLoader(
            _train_images(path, pixels_file, n),
            batch_size=batch_size,
            sampler=sampler,
            drop_last=n > batch_size,
            **loader_kwargs(workers, device.type == "cuda"),
        )
    )

    def epoch_pass(epoch: int) -> int:
        loader.set_epoch(epoch)
        seen = sum(
            _feed(step, path, seed, epoch, index, batch, labels)
            for index, (batch, labels) in enumerate(loader)
        )
        sync(device)
        return seen

    epoch_pass(0)
    return rate(*(timed(lambda e=epoch: epoch_pass(e)) for epoch in range(1, epochs)))


def e2e_train_in_row(
    step: Callable[[torch.Tensor, torch.Tensor], None],
    accelerator,
    path: DataPath,
    pixels_file: Path,
    n: int,
    batch_size: int,
    epochs: int,
    workers: int,
    seed: int,
) -> float:
    """`e2e_train` with one iterator over every epoch (`EpochsInRow`): the same batches, the
    same timed epochs, but no restart of the workers between them."""
    device = accelerator.device
    batches = EpochsInRow(SeededSampler(n, seed=seed), batch_size, 0, epochs)
    loader = accelerator.prepare(
        DataLoader(
            _train_images(path, pixels_file, n),
            batch_sampler=batches,
            **loader_kwargs(workers, device.type == "cuda"),
        )
    )
    per_epoch = len(batches.per_epoch)
    seen, start = 0, time.perf_counter()
    for index, (batch, labels) in enumerate(loader):
        epoch, in_epoch = divmod(index, per_epoch)
        fed = _feed(step, path, seed, epoch, in_epoch, batch, labels)
        seen += fed if epoch else 0
        if index == per_epoch - 1:  # the first epoch (worker start-up) is not timed
            sync(device)
            start = time.perf_counter()
    sync(device)
    return rate((seen, max(time.perf_counter() - start, 1e-9)))


def _train_images(path: DataPath, pixels_file: Path, n: int) -> CachedImages:
    return CachedImages(
        pixels_file, np.arange(n), np.arange(n) % len(CLASSES), path.train_transform
    )


def _feed(
    step,
    path: DataPath,
    seed: int,
    epoch: int,
    index: int,
    batch: torch.Tensor,
    labels: torch.Tensor,
) -> int:
    """One training step on a loader's batch, as the trainer takes it; returns its size."""
    if path.augment is not None:
        batch = path.augment(batch, (seed, 0, epoch, index, 0))
    step(path.normalize(batch), labels)
    return len(labels)


def e2e_infer(
    model,
    accelerator,
    path: DataPath,
    pixels_file: Path,
    n: int,
    batch_size: int,
    workers: int,
    tta_hflip: bool,
    channels_last: bool,
) -> float:
    """`predict` over the cache with the trainer's test loader; steady state (second pass when
    workers start up, which the trainer's persistent loaders pay once per fold)."""
    device = accelerator.device
    dataset = CachedImages(pixels_file, np.arange(n), np.full(n, -1), path.eval_transform)
    loader = accelerator.prepare(
        DataLoader(dataset, batch_size=batch_size, **loader_kwargs(workers, device.type == "cuda"))
    )

    def one_pass() -> int:
        probs = predict_probs(
            model, loader, accelerator, tta_hflip, channels_last, normalize=path.normalize
        )
        sync(device)
        return len(probs)

    if workers:
        one_pass()
    return rate(timed(one_pass))


def single_threaded(work: Callable[[], Any]) -> Any:
    """Run `work` with torch and OpenCV on one thread, as inside a data-loader worker."""
    import cv2

    torch_threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    try:
        return work()
    finally:
        torch.set_num_threads(torch_threads)
        cv2.setNumThreads(cv2_threads)


def decode_rate(paths: list[Path], size: int, n: int) -> float:
    """Images/s of one thread decoding full frames and resizing: what each epoch would cost
    without the cache (whose own decode uses JPEG draft scaling, faster still)."""

    def work() -> int:
        for i in range(n):
            Image.fromarray(decode_rgb(paths[i % len(paths)])).resize(
                (size, size), Image.Resampling.BILINEAR
            )
        return n

    return rate(single_threaded(lambda: timed(work)))


def worker_rate(
    path: DataPath, pixels_file: Path, n_rows: int, n_items: int, batch_size: int, seed: int
) -> float:
    """Images/s of one worker on one thread for this path: memmap read, its transform, collate
    of the trainer's own batches (as many epochs in a row as `n_items` needs)."""
    dataset = CachedImages(
        pixels_file, np.arange(n_rows), np.arange(n_rows) % len(CLASSES), path.train_transform
    )
    n_batches = -(-n_items // batch_size)  # every epoch holds at least one batch
    batches = list(
        islice(EpochsInRow(SeededSampler(n_rows, seed=seed), batch_size, 0, n_batches), n_batches)
    )

    def work() -> int:
        for batch in batches:
            default_collate([dataset[item] for item in batch])
        return sum(len(batch) for batch in batches)

    dataset[batches[0][0]]  # open the memmap outside the timer, as a worker does once
    return rate(single_threaded(lambda: timed(work)))


class _ReadyImages(Dataset):
    """The same ready image every time: a worker's cost is the collate, nothing else."""

    def __init__(self, image: torch.Tensor, n: int) -> None:
        self.image, self.n = image, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.image, 0


def transport_rate(
    dtype: torch.dtype,
    image_size: int,
    batch_size: int,
    workers: int,
    device: torch.device,
    batches: int,
) -> float:
    """Images/s of ready batches from the workers to the device, with the trainer's loader
    settings: shared memory, the pin-memory copy on a GPU (a copy into a buffer stands for it on
    a CPU) and the transfer. Each batch's fresh shared memory is first touched in the main
    process, so this rate caps any data path that sends `dtype` batches of this size."""
    use_cuda = device.type == "cuda"
    image = torch.zeros(3, image_size, image_size, dtype=dtype)
    n = batch_size * (batches + 2 * workers * 4)
    loader = DataLoader(
        _ReadyImages(image, n), batch_size=batch_size, **loader_kwargs(workers, use_cuda)
    )
    target = torch.empty(batch_size, 3, image_size, image_size, dtype=dtype, device=device)
    batches_iter = iter(loader)
    for _ in range(2 * workers):  # start-up: every worker has delivered a batch
        target.copy_(next(batches_iter)[0], non_blocking=use_cuda)
    sync(device)

    def work() -> int:
        for _ in range(batches):
            target.copy_(next(batches_iter)[0], non_blocking=use_cuda)
        sync(device)
        return batches * batch_size

    return rate(timed(work))


def data_side(
    cfg: BenchConfig,
    step: Callable[[torch.Tensor, torch.Tensor], None],
    model,
    accelerator,
    paths: list[Path],
    cache_dir: Path,
    data_cfg: dict[str, Any],
    workers: int,
    channels_last: bool,
    note: Callable[[str], None],
) -> dict[str, Any]:
    """The cache build, then each data path's end-to-end rates and per-worker rate (the first
    path's training also with one iterator across the epochs), then the transport of ready
    float32 and uint8 batches. `step(images, labels)` is the trainer's training step."""
    device = accelerator.device
    cache_size = cache_size_for(cfg.image_size, TrainConfig.cache_scale)
    n = len(paths)
    # as prepare_data: a process pool only pays off for more than a few hundred images
    start = time.perf_counter()
    cache = build_cache(
        paths,
        cache_size,
        cache_dir,
        max(1, workers) if n > 256 else 0,
        progress=False,
        desc="bench cache",
    )
    out: dict[str, Any] = {"cache_build_s": time.perf_counter() - start, "paths": {}}
    note(f"cache of {n} images built in {out['cache_build_s']:.1f} s")
    n_items = max(256, 4 * cfg.batch_size)

    for name in cfg.data_paths:
        path = data_path(name, data_cfg, cfg.augment, device)
        model.train()
        train = e2e_train(
            step,
            accelerator,
            path,
            cache.pixels_file,
            n,
            cfg.batch_size,
            cfg.epochs,
            workers,
            cfg.seed,
        )
        note(f"[{name}] e2e training {train:.1f} images/s")
        if cfg.in_row and name == cfg.data_paths[0]:  # the next lever, beside what it replaces
            in_row = e2e_train_in_row(
                step,
                accelerator,
                path,
                cache.pixels_file,
                n,
                cfg.batch_size,
                cfg.epochs,
                workers,
                cfg.seed,
            )
            out["in_row"] = {"data_path": name, "e2e_train_img_s": in_row}
            note(f"[{name}] e2e training, one iterator across epochs {in_row:.1f} images/s")
        infer = e2e_infer(
            model,
            accelerator,
            path,
            cache.pixels_file,
            n,
            2 * cfg.batch_size,
            workers,
            cfg.tta_hflip,
            channels_last,
        )
        out["paths"][name] = {
            "e2e_train_img_s": train,
            "e2e_infer_img_s": infer,
            "per_worker_img_s": worker_rate(
                path, cache.pixels_file, n, n_items, cfg.batch_size, cfg.seed + 1
            ),
        }
        note(
            f"[{name}] e2e inference {infer:.1f}, per worker "
            f"{out['paths'][name]['per_worker_img_s']:.1f} images/s"
        )
    out["decode_per_worker_img_s"] = decode_rate(paths, cache_size, min(n, max(16, cfg.batch_size)))
    out["transport_workers"] = max(1, workers)
    out["transport_img_s"] = {
        str(dtype).removeprefix("torch."): transport_rate(
            dtype,
            cfg.image_size,
            cfg.batch_size,
            max(1, workers),
            device,
            batches=max(8, 4 * max(1, workers)),
        )
        for dtype in (torch.float32, torch.uint8)
    }
    note(
        f"transport: float32 {out['transport_img_s']['float32']:.1f}, uint8 "
        f"{out['transport_img_s']['uint8']:.1f} images/s"
    )
    return out


def path_figures(
    side: dict[str, Any], workers: int, bound_train: float, bound_infer: float
) -> dict[str, dict[str, float]]:
    """Each path's ratios, and the ceiling its parts predict: the slower of what the workers
    can make and what the transport can carry (float32 batches for `float`, else uint8)."""
    out = {}
    for name, p in side["paths"].items():
        transport = side["transport_img_s"]["float32" if name == "float" else "uint8"]
        ceiling = min(transport, max(1, workers) * p["per_worker_img_s"])
        out[name] = {
            **p,
            "e2e_train_ratio": p["e2e_train_img_s"] / bound_train,
            "e2e_infer_ratio": p["e2e_infer_img_s"] / bound_infer,
            "predicted_ceiling_img_s": ceiling,
            "predicted_ceiling_vs_train_bound": ceiling / bound_train,
        }
    return out
