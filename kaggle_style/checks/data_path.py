"""The data side of `bench`: the trainer's loaders over one cache, for each way of feeding a batch.

Three data paths, the levers of the GPU check (README "GPU check"):
- `float`: the workers augment and normalise; float32 batches (the path before uint8 batches);
- `uint8`: the workers augment; uint8 batches normalised on the device (the GPU default);
- `uint8+device_augment`: the workers only resize; flips, jitter and normalisation on the device
  (`augment_on: device`).
Besides the end-to-end rates it measures the two things that can cap them without the model:
each worker's own rate, and the transport of ready batches from the workers into the main
process (shared memory, then the pin-memory copy) for float32 and uint8 batches.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, default_collate

from kaggle_style.constants import CLASSES
from kaggle_style.data.images import decode_rgb
from kaggle_style.training.data import (
    CachedImages,
    EpochsInRow,
    SeededSampler,
    batch_normalizer,
    loader_kwargs,
    worker_transforms,
)
from kaggle_style.training.device_augment import DeviceAugment
from kaggle_style.training.inference import predict_probs

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
        name=name, train_transform=train, eval_transform=evaluation,
        normalize=batch_normalizer(data_cfg, on_device, device),
        augment=DeviceAugment(augment) if augment_on == "device" else None,
    )


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


def e2e_train(step: Callable[[torch.Tensor, torch.Tensor], None], accelerator, path: DataPath,
              pixels_file: Path, n: int, batch_size: int, epochs: int, workers: int,
              seed: int) -> float:
    """Images/s of training over the cache, epochs after the first (which starts the workers);
    a new iterator each epoch, as the trainer's loop."""
    device = accelerator.device
    sampler = SeededSampler(n, seed=seed)
    loader = accelerator.prepare(DataLoader(
        _train_images(path, pixels_file, n), batch_size=batch_size, sampler=sampler,
        drop_last=n > batch_size, **loader_kwargs(workers, device.type == "cuda"),
    ))

    def epoch_pass(epoch: int) -> int:
        loader.set_epoch(epoch)
        seen = sum(_feed(step, path, seed, epoch, index, batch, labels)
                   for index, (batch, labels) in enumerate(loader))
        sync(device)
        return seen

    epoch_pass(0)
    return rate(*(timed(lambda e=epoch: epoch_pass(e)) for epoch in range(1, epochs)))


def e2e_train_in_row(step: Callable[[torch.Tensor, torch.Tensor], None], accelerator,
                     path: DataPath, pixels_file: Path, n: int, batch_size: int, epochs: int,
                     workers: int, seed: int) -> float:
    """`e2e_train` with one iterator over every epoch (`EpochsInRow`): the same batches, the
    same timed epochs, but no restart of the workers between them."""
    device = accelerator.device
    batches = EpochsInRow(SeededSampler(n, seed=seed), batch_size, 0, epochs)
    loader = accelerator.prepare(DataLoader(
        _train_images(path, pixels_file, n), batch_sampler=batches,
        **loader_kwargs(workers, device.type == "cuda"),
    ))
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
    return CachedImages(pixels_file, np.arange(n), np.arange(n) % len(CLASSES),
                        path.train_transform)


def _feed(step, path: DataPath, seed: int, epoch: int, index: int, batch: torch.Tensor,
          labels: torch.Tensor) -> int:
    """One training step on a loader's batch, as the trainer takes it; returns its size."""
    if path.augment is not None:
        batch = path.augment(batch, (seed, 0, epoch, index, 0))
    step(path.normalize(batch), labels)
    return len(labels)


def e2e_infer(model, accelerator, path: DataPath, pixels_file: Path, n: int, batch_size: int,
              workers: int, tta_hflip: bool, channels_last: bool) -> float:
    """`predict` over the cache with the trainer's test loader; steady state (second pass when
    workers start up, which the trainer's persistent loaders pay once per fold)."""
    device = accelerator.device
    dataset = CachedImages(pixels_file, np.arange(n), np.full(n, -1), path.eval_transform)
    loader = accelerator.prepare(DataLoader(dataset, batch_size=batch_size,
                                            **loader_kwargs(workers, device.type == "cuda")))

    def one_pass() -> int:
        probs = predict_probs(model, loader, accelerator, tta_hflip, channels_last,
                              normalize=path.normalize)
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
                (size, size), Image.Resampling.BILINEAR)
        return n

    return rate(single_threaded(lambda: timed(work)))


def worker_rate(path: DataPath, pixels_file: Path, n_rows: int, n_items: int, batch_size: int,
                seed: int) -> float:
    """Images/s of one worker on one thread for this path: memmap read, its transform, collate
    of the trainer's own batches (as many epochs in a row as `n_items` needs)."""
    dataset = CachedImages(pixels_file, np.arange(n_rows), np.arange(n_rows) % len(CLASSES),
                           path.train_transform)
    n_batches = -(-n_items // batch_size)  # every epoch holds at least one batch
    batches = list(islice(EpochsInRow(SeededSampler(n_rows, seed=seed), batch_size, 0,
                                      n_batches), n_batches))

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


def transport_rate(dtype: torch.dtype, image_size: int, batch_size: int, workers: int,
                   device: torch.device, batches: int) -> float:
    """Images/s of ready batches from the workers to the device, with the trainer's loader
    settings: shared memory, the pin-memory copy on a GPU (a copy into a buffer stands for it on
    a CPU) and the transfer. Each batch's fresh shared memory is first touched in the main
    process, so this rate caps any data path that sends `dtype` batches of this size."""
    use_cuda = device.type == "cuda"
    image = torch.zeros(3, image_size, image_size, dtype=dtype)
    n = batch_size * (batches + 2 * workers * 4)
    loader = DataLoader(_ReadyImages(image, n), batch_size=batch_size,
                        **loader_kwargs(workers, use_cuda))
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
