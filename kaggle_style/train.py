"""One Accelerate trainer for any timm backbone: folds in, OOF and test predictions out.

Backbones differ only in config. Per fold it trains on the other folds' sites, checkpoints
every epoch (resumable), and predicts the held-out fold (OOF) and the test set with the same
`predict` function that validation uses.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import shutil
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler, get_worker_info
from tqdm.auto import tqdm

from kaggle_style.config import add_config_arguments, config_dict, resolve_config
from kaggle_style.constants import (
    CLASSES,
    CONFIG_FILE,
    FOLD_COL,
    ID_COL,
    LABEL_COL,
    METRICS_FILE,
    OOF_FILE,
    TEST_FILE,
)
from kaggle_style.data.images import ImageCache, build_cache
from kaggle_style.data.tables import Dataset as TableDataset
from kaggle_style.data.tables import load_dataset, read_folds
from kaggle_style.io import git_commit, write_json, write_yaml
from kaggle_style.metrics import format_summary, log_loss, score
from kaggle_style.predictions import write_predictions

# Keys that change what a fold learns; the others (workers, progress, paths) do not.
NON_MODEL_KEYS = frozenset(
    {"name", "runs_dir", "num_workers", "progress", "folds", "resume", "log_with",
     "cache_dir", "search_space", "compile", "max_steps_per_epoch_eval", "log_every"}
)
EpochCallback = Callable[[int, int, float], None]  # (fold, epoch, val_log_loss)


@dataclass
class TrainConfig:
    """Everything a training run needs; a YAML file in configs/ sets these per model recipe."""

    name: str = "model"
    data: str = "data/demo"
    folds_file: str = "folds/folds.csv"
    runs_dir: str = "runs"
    cache_dir: str = "cache"
    # model
    backbone: str = "resnet18"
    pretrained: bool | str = False  # false | true (timm hub / HF cache) | path to a weights file
    image_size: int | None = None  # None: the backbone's own input size
    drop_rate: float = 0.0
    drop_path_rate: float = 0.0
    # which pixels: full frame, detector crops at a threshold, or both as two views per image
    view: str = "full"  # full | crop | crop+full
    crops_manifest: str = "crops/manifest.csv"
    crop_threshold: float = 0.1
    # optimisation
    epochs: int = 3
    batch_size: int = 32
    lr: float = 1e-3
    head_lr_mult: float = 1.0  # the new 8-class head often wants a larger rate than the backbone
    weight_decay: float = 0.05
    warmup_epochs: float = 0.0
    min_lr_ratio: float = 0.01
    freeze_epochs: int = 0  # train only the head for the first N epochs (BatchNorm frozen too)
    freeze_bn: bool = False  # keep BatchNorm statistics fixed all run (small data, small batches)
    grad_accum: int = 1
    label_smoothing: float = 0.0
    class_weights: str = "none"  # none | balanced | sqrt (against the rare hog class)
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    mix_prob: float = 1.0
    ema_decay: float = 0.0  # 0 disables the weight EMA
    # data
    augment: str = "light"  # none | light | medium | strong
    augment_strength: float = 1.0
    cache_scale: float = 1.15  # cache images a bit larger than the input for crop augmentation
    num_workers: int = -1  # -1: chosen for the machine
    # run control
    seed: int = 42
    folds: list[int] | None = None  # None: every fold in the folds file
    tta_hflip: bool = True
    mixed_precision: str = "auto"  # auto (bf16 on GPU, fp32 on CPU) | no | bf16
    channels_last: bool = True
    compile: bool = False
    max_steps_per_epoch: int | None = None  # cap for smoke tests and quick tuning
    max_steps_per_epoch_eval: int | None = None
    resume: bool = False
    progress: bool = True
    log_every: int = 20  # steps between loss reads (each read waits for the GPU)
    log_with: str | None = None  # tensorboard | wandb | mlflow (never a network call by default)
    search_space: dict[str, Any] = field(default_factory=dict)  # read by `tune`

    @property
    def run_dir(self) -> Path:
        return Path(self.runs_dir) / self.name


def model_hash(cfg: TrainConfig) -> str:
    """Hash of the keys that change what is learned: a fold trained under another is stale."""
    values = {k: v for k, v in config_dict(cfg).items() if k not in NON_MODEL_KEYS}
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------------------------
# data


@dataclass(frozen=True)
class Samples:
    """Training or test samples: one row per view (an image can have several crops)."""

    ids: np.ndarray  # image id of each sample
    paths: list[str]

    def __len__(self) -> int:
        return len(self.paths)


def build_samples(frame: pd.DataFrame, root: Path, cfg: TrainConfig) -> Samples:
    """Full frames, detector crops, or both, per `cfg.view`."""
    full = {i: [str(root / p)] for i, p in zip(frame[ID_COL], frame["filepath"], strict=True)}
    if cfg.view == "full":
        views = full
    elif cfg.view in ("crop", "crop+full"):
        from kaggle_style.detect.crops import crop_paths, load_manifest

        manifest_path = Path(cfg.crops_manifest)
        if not manifest_path.is_file():
            raise FileNotFoundError(
                f"view={cfg.view!r} needs the crops manifest {manifest_path}; run `make crops` "
                "(kaggle-style detect + crop) first, or set view: full"
            )
        crops = crop_paths(load_manifest(manifest_path), cfg.crop_threshold)
        missing = [i for i in full if i not in crops]
        if missing:
            raise ValueError(
                f"{manifest_path}: no crops at threshold {cfg.crop_threshold} for "
                f"{len(missing)} image(s), e.g. {', '.join(map(str, missing[:5]))}"
            )
        views = {
            i: [str(p) for p in crops[i]] + (full[i] if cfg.view == "crop+full" else [])
            for i in full
        }
    else:
        raise ValueError(f"view must be full, crop or crop+full, not {cfg.view!r}")
    ids = [i for i, paths in views.items() for _ in paths]
    paths = [p for plist in views.values() for p in plist]
    return Samples(ids=np.asarray(ids, dtype=object), paths=paths)


class CachedImages(Dataset):
    """Cached uint8 images through an albumentations transform.

    Items are `(index, seed)` from `SeededSampler` so that each sample's augmentation depends only
    on (seed, fold, epoch, position): identical across worker counts and after a resume.
    """

    def __init__(self, pixels_file: Path, rows: np.ndarray, targets: np.ndarray, transform) -> None:
        self.pixels_file = pixels_file
        self.rows = rows
        self.targets = targets
        self.transform = transform
        self._pixels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[torch.Tensor, int]:
        index, seed = item if isinstance(item, tuple) else (item, None)
        if self._pixels is None:  # opened lazily: each worker maps the file itself
            self._pixels = np.load(self.pixels_file, mmap_mode="r")
            if get_worker_info() is not None:
                import cv2

                cv2.setNumThreads(0)  # the workers are the parallelism: no OpenCV pool in each
        if seed is not None:
            # One generator pair for the whole pipeline. `set_random_seed` seeds every transform
            # alike, so their draws coincide (each flipped image was also colour-jittered), and
            # builds two generators per transform per image (~0.3 ms).
            self.transform.set_random_state(np.random.default_rng(seed), random.Random(seed))
        image = self.transform(image=np.asarray(self._pixels[self.rows[index]]))["image"]
        return image, int(self.targets[index])


class SeededSampler(Sampler):
    """A shuffling sampler whose order and per-sample seeds follow (seed, epoch) alone."""

    def __init__(self, n: int, seed: int, shuffle: bool = True) -> None:
        self.n, self.seed, self.shuffle, self.epoch = n, seed, shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[tuple[int, int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(self.n) if self.shuffle else np.arange(self.n)
        seeds = rng.integers(0, 2**31 - 1, self.n)
        yield from zip(order.tolist(), seeds.tolist(), strict=True)


@dataclass
class Prepared:
    """What every fold shares: tables, folds, samples and their image caches."""

    cfg: TrainConfig
    dataset: TableDataset
    folds: pd.DataFrame
    train_samples: Samples
    test_samples: Samples
    train_cache: ImageCache
    test_cache: ImageCache | None
    data_cfg: dict[str, Any]
    label_of: dict[str, int]
    fold_of: dict[str, int]


def default_workers(cfg: TrainConfig) -> int:
    if cfg.num_workers >= 0:
        return cfg.num_workers
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return min(12, max(1, (cpus or 2) - 1)) if torch.cuda.is_available() else 0


def prepare_data(cfg: TrainConfig) -> Prepared:
    """Read and check tables and folds, then decode every image once into the cache."""
    dataset = load_dataset(cfg.data)
    folds = read_folds(cfg.folds_file, dataset.train)
    from kaggle_style.models import create_model, data_config

    data_cfg = data_config(create_model(cfg.backbone, len(CLASSES), image_size=cfg.image_size),
                           cfg.image_size)
    size = int(data_cfg["input_size"][-1])
    cache_size = max(size, math.ceil(size * cfg.cache_scale))
    train_samples = build_samples(dataset.train, dataset.root, cfg)
    test_samples = build_samples(dataset.test, dataset.root, cfg)
    workers = max(1, default_workers(cfg)) if len(train_samples) > 256 else 0
    train_cache = build_cache(train_samples.paths, cache_size, cfg.cache_dir, workers,
                              cfg.progress, desc="cache train")
    test_cache = None
    if len(test_samples):
        test_cache = build_cache(test_samples.paths, cache_size, cfg.cache_dir, workers,
                                 cfg.progress, desc="cache test")
        _check_test_images(test_samples, test_cache)
    _warn_bad_train_images(train_cache)
    label_index = {c: i for i, c in enumerate(CLASSES)}
    return Prepared(
        cfg=cfg, dataset=dataset, folds=folds, train_samples=train_samples,
        test_samples=test_samples, train_cache=train_cache, test_cache=test_cache,
        data_cfg=data_cfg,
        label_of={i: label_index[c] for i, c in zip(folds[ID_COL], folds[LABEL_COL], strict=True)},
        fold_of=dict(zip(folds[ID_COL], folds[FOLD_COL].astype(int), strict=True)),
    )


def _check_test_images(samples: Samples, cache: ImageCache) -> None:
    """A submission needs every test id: an unreadable test image stops the run before training."""
    usable = pd.Series(cache.ok).groupby(samples.ids).any()
    bad_ids = usable.index[~usable.to_numpy()].tolist()
    if bad_ids:
        details = "; ".join(cache.errors[i] for i in list(cache.errors)[:5])
        raise ValueError(
            f"{len(bad_ids)} test image(s) cannot be read, e.g. {', '.join(bad_ids[:5])} "
            f"({details}); a submission needs every test id. See {cache.folder}/bad_images.csv"
        )


def _warn_bad_train_images(cache: ImageCache) -> None:
    if cache.errors:
        warnings.warn(
            f"{len(cache.errors)} training image(s) cannot be read and are left out of training "
            f"(listed in {cache.folder}/bad_images.csv)",
            stacklevel=2,
        )


# --------------------------------------------------------------------------------------------
# training


def class_weight_vector(labels: np.ndarray, mode: str) -> torch.Tensor:
    counts = np.bincount(labels, minlength=len(CLASSES)).astype(float)
    counts = np.maximum(counts, 1.0)
    if mode == "none":
        weights = np.ones(len(CLASSES))
    elif mode == "balanced":
        weights = counts.sum() / (len(CLASSES) * counts)
    elif mode == "sqrt":
        weights = np.sqrt(counts.sum() / (len(CLASSES) * counts))
    else:
        raise ValueError(f"class_weights must be none, balanced or sqrt, not {mode!r}")
    return torch.tensor(weights / weights.mean(), dtype=torch.float32)


def soft_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Cross-entropy with soft targets (smoothing, mixup) and class weights in one formula."""
    log_probs = F.log_softmax(logits.float(), dim=1)
    per_sample = -(targets * log_probs).sum(dim=1)
    sample_weight = (targets * weights).sum(dim=1)
    return (per_sample * sample_weight).sum() / sample_weight.sum()


def mix_batch(
    images: torch.Tensor, targets: torch.Tensor, cfg: TrainConfig, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup or CutMix (chosen at random when both are on), from the epoch's own generator."""
    use = [a for a in (("mixup", cfg.mixup_alpha), ("cutmix", cfg.cutmix_alpha)) if a[1] > 0]
    if not use or rng.random() > cfg.mix_prob:
        return images, targets
    kind, alpha = use[rng.integers(len(use))]
    lam = float(rng.beta(alpha, alpha))
    perm = torch.from_numpy(rng.permutation(images.shape[0])).to(images.device)
    if kind == "mixup":
        mixed = images * lam + images[perm] * (1 - lam)
    else:
        h, w = images.shape[-2:]
        cut_h, cut_w = int(h * math.sqrt(1 - lam)), int(w * math.sqrt(1 - lam))
        cy, cx = int(rng.integers(h)), int(rng.integers(w))
        y0, y1 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, h)
        x0, x1 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, w)
        mixed = images.clone()
        mixed[..., y0:y1, x0:x1] = images[perm][..., y0:y1, x0:x1]
        lam = 1 - (y1 - y0) * (x1 - x0) / (h * w)
    return mixed, targets * lam + targets[perm] * (1 - lam)


def lr_lambda(total_steps: int, warmup_steps: int, min_ratio: float) -> Callable[[int], float]:
    """Linear warm-up, then cosine decay to `min_ratio` of the peak rate."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return factor


@torch.no_grad()
def predict(model, loader, accelerator, tta_hflip: bool, channels_last: bool,
            max_steps: int | None = None) -> np.ndarray:
    """Softmax probabilities (float64) for every sample of `loader`, in order.

    The one prediction function: validation, OOF and test all use it. With `tta_hflip` it averages
    the probabilities of the image and its mirror.
    """
    model.eval()
    outputs = []
    for step, (images, _) in enumerate(loader):
        if max_steps is not None and step >= max_steps:
            break
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with accelerator.autocast():
            probs = model(images).float().softmax(dim=1)
            if tta_hflip:
                probs = (probs + model(images.flip(3)).float().softmax(dim=1)) / 2
        outputs.append(accelerator.gather_for_metrics(probs).cpu())
    if not outputs:
        return np.zeros((0, len(CLASSES)))
    return torch.cat(outputs).double().numpy()


def per_image(probs: np.ndarray, ids: np.ndarray) -> pd.DataFrame:
    """Mean over an image's views (crops, full frame), renormalised; rows in first-seen order."""
    frame = pd.DataFrame(probs, columns=list(CLASSES))
    mean = frame.groupby(pd.Index(ids, name=ID_COL), sort=False).mean()
    mean = mean.div(mean.sum(axis=1), axis=0)
    return mean.reset_index()


@dataclass
class FoldResult:
    fold: int
    oof: pd.DataFrame  # id, classes, fold
    test: pd.DataFrame | None
    history: list[float]


class Checkpoints:
    """Per-epoch checkpoints: model (safetensors), optimizer and scheduler, EMA, epoch.

    Each is written into its own folder and made current by an atomic pointer file, so a kill at
    any moment leaves the previous checkpoint intact.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def save(self, epoch: int, model, optimizer, scheduler, ema, history: list[float]) -> None:
        from safetensors.torch import save_model

        target = self.folder / f"epoch{epoch}"
        tmp = self.folder / f".epoch{epoch}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        save_model(model, str(tmp / "model.safetensors"))
        if ema is not None:
            save_model(ema.module, str(tmp / "ema.safetensors"))
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()},
                   tmp / "optimizer.pt")
        write_json(tmp / "state.json", {"epoch": epoch, "history": history})
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
        write_json(self.folder / "latest.json", {"epoch": epoch, "path": target.name})
        for old in self.folder.glob("epoch*"):
            if old != target:
                shutil.rmtree(old, ignore_errors=True)

    def latest(self) -> Path | None:
        pointer = self.folder / "latest.json"
        if not pointer.exists():
            return None
        path = self.folder / json.loads(pointer.read_text())["path"]
        return path if (path / "state.json").exists() else None

    def load(self, path: Path, model, optimizer, scheduler, ema) -> tuple[int, list[float]]:
        from safetensors.torch import load_model

        load_model(model, str(path / "model.safetensors"))
        if ema is not None:
            load_model(ema.module, str(path / "ema.safetensors"))
        state = torch.load(path / "optimizer.pt", weights_only=True, map_location="cpu")
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        info = json.loads((path / "state.json").read_text())
        return int(info["epoch"]), list(info["history"])


def loader_kwargs(workers: int, use_cuda: bool) -> dict[str, Any]:
    """DataLoader settings for this machine: the trainer and the benchmark share them."""
    return {"num_workers": workers, "pin_memory": use_cuda, "persistent_workers": workers > 0,
            "prefetch_factor": 4 if workers else None}


@dataclass
class FoldData:
    """One fold's loaders and the rows (samples) they read."""

    train_loader: DataLoader
    val_loader: DataLoader
    train_rows: np.ndarray
    val_rows: np.ndarray
    train_targets: np.ndarray


def fold_loaders(prep: Prepared, fold: int, use_cuda: bool) -> FoldData:
    """Train on the other folds' readable samples; validate on this fold's."""
    from kaggle_style.data.transforms import eval_transform, train_transform

    cfg, samples, cache = prep.cfg, prep.train_samples, prep.train_cache
    sample_fold = np.array([prep.fold_of[i] for i in samples.ids])
    targets = np.array([prep.label_of[i] for i in samples.ids])
    train_rows = np.flatnonzero((sample_fold != fold) & cache.ok)
    val_rows = np.flatnonzero((sample_fold == fold) & cache.ok)
    pixels_file = cache.folder / "pixels.npy"
    train_ds = CachedImages(pixels_file, train_rows, targets[train_rows],
                            train_transform(prep.data_cfg, cfg.augment, cfg.augment_strength))
    val_ds = CachedImages(pixels_file, val_rows, targets[val_rows], eval_transform(prep.data_cfg))
    kw = loader_kwargs(default_workers(cfg), use_cuda)
    train_loader = DataLoader(train_ds, batch_size=cfg.batch_size,
                              sampler=SeededSampler(len(train_ds), seed=cfg.seed * 1000 + fold),
                              drop_last=len(train_ds) > cfg.batch_size, **kw)
    val_loader = DataLoader(val_ds, batch_size=cfg.batch_size * 2, **kw)
    return FoldData(train_loader, val_loader, train_rows, val_rows, targets[train_rows])


def make_test_loader(prep: Prepared, use_cuda: bool) -> DataLoader:
    """The test images, in order, through the evaluation transform."""
    from kaggle_style.data.transforms import eval_transform

    rows = np.arange(len(prep.test_samples))
    dataset = CachedImages(prep.test_cache.folder / "pixels.npy", rows, np.full(len(rows), -1),
                           eval_transform(prep.data_cfg))
    return DataLoader(dataset, batch_size=prep.cfg.batch_size * 2,
                      **loader_kwargs(default_workers(prep.cfg), use_cuda))


def build_optimizer(cfg: TrainConfig, model, steps_per_epoch: int, use_cuda: bool):
    """AdamW with a head/backbone learning-rate split and a per-update cosine schedule."""
    from kaggle_style.models import classifier_parameters

    backbone_params, head_params = classifier_parameters(model)
    groups = [{"params": backbone_params, "lr": cfg.lr},
              {"params": head_params, "lr": cfg.lr * cfg.head_lr_mult}]
    optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr,
                                  weight_decay=cfg.weight_decay, fused=use_cuda)
    updates_per_epoch = max(1, math.ceil(steps_per_epoch / cfg.grad_accum))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lr_lambda(updates_per_epoch * cfg.epochs, int(updates_per_epoch * cfg.warmup_epochs),
                  cfg.min_lr_ratio),
    )
    return optimizer, scheduler, backbone_params


def train_one_epoch(cfg: TrainConfig, fold: int, epoch: int, model, loader, optimizer, scheduler,
                    ema, accelerator, weights: torch.Tensor, steps: int,
                    channels_last: bool) -> None:
    """One pass over the training loader: prepare'd objects, accumulate, backward."""
    from kaggle_style.models import batch_norm_eval

    mix_rng = np.random.default_rng([cfg.seed, fold, epoch, 7])
    model.train()
    if cfg.freeze_bn or epoch < cfg.freeze_epochs:
        batch_norm_eval(model)
    bar = tqdm(total=steps, desc=f"fold {fold} epoch {epoch + 1}/{cfg.epochs}",
               disable=not (cfg.progress and accelerator.is_local_main_process), leave=False)
    running, since = torch.zeros((), device=accelerator.device), 0
    for step, (images, labels) in enumerate(loader):
        if step >= steps:
            break
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        soft = F.one_hot(labels, len(CLASSES)).float()
        soft = soft * (1 - cfg.label_smoothing) + cfg.label_smoothing / len(CLASSES)
        images, soft = mix_batch(images, soft, cfg, mix_rng)
        running += optimisation_step(model, optimizer, accelerator, images, soft, weights)
        if accelerator.sync_gradients:
            scheduler.step()
            if ema is not None:
                ema.update(accelerator.unwrap_model(model))
        since += 1
        # Reading the loss waits for the GPU, so it is read every `log_every` steps, not each one.
        if since == max(1, cfg.log_every):
            _read_loss(running, since, f"fold {fold}, epoch {epoch + 1}, step {step + 1}", bar,
                       scheduler.get_last_lr()[0])
            since = 0
        bar.update(1)
    if since:
        _read_loss(running, since, f"fold {fold}, epoch {epoch + 1}, step {step + 1}", bar,
                   scheduler.get_last_lr()[0])
    bar.close()


def optimisation_step(model, optimizer, accelerator, images: torch.Tensor, soft: torch.Tensor,
                      weights: torch.Tensor) -> torch.Tensor:
    """Forward, loss, backward and (when the accumulation window closes) the optimizer step.

    The trainer and the benchmark's model-only bound both take exactly this step. Returns the
    loss without reading it, so nothing waits for the device.
    """
    with accelerator.accumulate(model):
        with accelerator.autocast():
            logits = model(images)
        loss = soft_cross_entropy(logits, soft, weights)
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return loss.detach()


def _read_loss(running: torch.Tensor, steps: int, where: str, bar, lr: float) -> None:
    """Mean loss of the last `steps` steps onto the progress bar; stop on a non-finite one."""
    mean = running.item() / steps
    running.zero_()
    if not math.isfinite(mean):
        raise FloatingPointError(
            f"non-finite loss ({mean}) at {where} (or up to {steps - 1} steps before): lower lr, "
            "check the inputs, or use bf16 rather than fp16"
        )
    bar.set_postfix(loss=f"{mean:.3f}", lr=f"{lr:.2e}")


def train_fold(prep: Prepared, fold: int, on_epoch_end: EpochCallback | None = None) -> FoldResult:
    """Train on every fold but `fold`; predict `fold` (OOF) and the test set."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    from kaggle_style.models import create_model, freeze

    cfg = prep.cfg
    use_cuda = torch.cuda.is_available()
    precision = cfg.mixed_precision
    if precision == "auto":  # bf16 needs no loss scaler; fp16 is never chosen for the user
        precision = "bf16" if use_cuda else "no"
    accelerator = Accelerator(
        mixed_precision=precision, gradient_accumulation_steps=cfg.grad_accum,
        cpu=not use_cuda, log_with=cfg.log_with, project_dir=str(cfg.run_dir),
    )
    if cfg.log_with:
        accelerator.init_trackers(cfg.name, config={k: str(v) for k, v in config_dict(cfg).items()})
    # Seed before the model is built so a fold's initial weights do not depend on which folds ran
    # before it in this process (and so a resumed fold rebuilds the same model).
    set_seed(cfg.seed + fold)
    data = fold_loaders(prep, fold, use_cuda)
    model = create_model(cfg.backbone, len(CLASSES), cfg.pretrained, image_size=cfg.image_size,
                         drop_rate=cfg.drop_rate, drop_path_rate=cfg.drop_path_rate)
    use_channels_last = cfg.channels_last and use_cuda
    if use_channels_last:
        model = model.to(memory_format=torch.channels_last)
    steps = len(data.train_loader)
    if cfg.max_steps_per_epoch:
        steps = min(steps, cfg.max_steps_per_epoch)
    optimizer, scheduler, backbone_params = build_optimizer(cfg, model, steps, use_cuda)
    ema = None
    if cfg.ema_decay > 0:
        from timm.utils import ModelEmaV3

        ema = ModelEmaV3(model, decay=cfg.ema_decay)
    model, optimizer, train_loader, val_loader = accelerator.prepare(
        model, optimizer, data.train_loader, data.val_loader
    )
    if cfg.compile:
        model = torch.compile(model)
    weights = class_weight_vector(data.train_targets, cfg.class_weights).to(accelerator.device)

    fold_dir = cfg.run_dir / f"fold{fold}"
    checkpoints = Checkpoints(fold_dir / "checkpoints")
    start_epoch, history = 0, []
    latest = checkpoints.latest()
    if latest is not None and cfg.resume:
        done_epoch, history = checkpoints.load(
            latest, accelerator.unwrap_model(model), optimizer, scheduler, ema
        )
        start_epoch = done_epoch + 1
        accelerator.print(f"fold {fold}: resumed after epoch {done_epoch + 1} from {latest}")

    for epoch in range(start_epoch, cfg.epochs):
        # Accelerate's loader overrides the sampler's epoch with its own iteration counter, which
        # restarts at 0 after a resume: set the epoch on the prepared loader itself.
        train_loader.set_epoch(epoch)
        # Per-epoch seeds make dropout and mixing reproducible after a resume, with no RNG state.
        torch.manual_seed(cfg.seed * 100_003 + fold * 1_009 + epoch)
        freeze(backbone_params, frozen=epoch < cfg.freeze_epochs)
        train_one_epoch(cfg, fold, epoch, model, train_loader, optimizer, scheduler, ema,
                        accelerator, weights, steps, use_channels_last)
        eval_model = ema.module if ema is not None else model
        val_probs = predict(eval_model, val_loader, accelerator, cfg.tta_hflip,
                            use_channels_last, cfg.max_steps_per_epoch_eval)
        val_frame = per_image(val_probs, prep.train_samples.ids[data.val_rows][: len(val_probs)])
        val_loss = log_loss(np.array([prep.label_of[i] for i in val_frame[ID_COL]]),
                            val_frame[list(CLASSES)].to_numpy())
        history.append(val_loss)
        accelerator.print(f"fold {fold} epoch {epoch + 1}/{cfg.epochs}: "
                          f"val log loss {val_loss:.4f}")
        if cfg.log_with:
            accelerator.log({"val_log_loss": val_loss, "fold": fold}, step=epoch)
        if accelerator.is_main_process:
            checkpoints.save(epoch, accelerator.unwrap_model(model), optimizer, scheduler, ema,
                             history)
        accelerator.wait_for_everyone()
        if on_epoch_end is not None:
            on_epoch_end(fold, epoch, val_loss)

    final_model = ema.module if ema is not None else model
    oof = _oof_frame(prep, fold, final_model, val_loader, data.val_rows, accelerator,
                     use_channels_last)
    test = None
    if prep.test_cache is not None:
        keep = prep.test_cache.ok
        probs = predict(final_model, accelerator.prepare(make_test_loader(prep, use_cuda)),
                        accelerator, cfg.tta_hflip, use_channels_last)
        test = per_image(probs[keep], prep.test_samples.ids[keep])
    if accelerator.is_main_process:
        from safetensors.torch import save_model

        save_model(accelerator.unwrap_model(final_model), str(fold_dir / "model.safetensors"))
    if cfg.log_with:
        accelerator.end_training()
    return FoldResult(fold=fold, oof=oof, test=test, history=history)


def _oof_frame(prep: Prepared, fold: int, model, val_loader, val_rows, accelerator,
               channels_last: bool) -> pd.DataFrame:
    """OOF rows for every image of the fold; an image with no readable view gets the prior."""
    probs = predict(model, val_loader, accelerator, prep.cfg.tta_hflip, channels_last)
    frame = per_image(probs, prep.train_samples.ids[val_rows])
    fold_ids = prep.folds.loc[prep.folds[FOLD_COL] == fold, ID_COL]
    missing = sorted(set(fold_ids) - set(frame[ID_COL]))
    if missing:
        train_labels = prep.folds.loc[prep.folds[FOLD_COL] != fold, LABEL_COL]
        prior = train_labels.value_counts(normalize=True).reindex(list(CLASSES)).fillna(0)
        prior = (prior + 1e-3) / (prior + 1e-3).sum()
        fill = pd.DataFrame([prior.to_numpy()] * len(missing), columns=list(CLASSES))
        fill.insert(0, ID_COL, missing)
        frame = pd.concat([frame, fill], ignore_index=True)
    frame = frame.set_index(ID_COL).loc[fold_ids.tolist()].reset_index()
    frame[FOLD_COL] = fold
    return frame


# --------------------------------------------------------------------------------------------
# a run: every fold, then combined outputs


def run_training(cfg: TrainConfig, on_epoch_end: EpochCallback | None = None) -> dict[str, Any]:
    """Train the configured folds (skipping finished ones with the same config) and, when every
    fold of the folds file is done, write the run's oof.csv, test.csv and metrics.json."""
    started = time.time()
    run_dir = cfg.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    prep = prepare_data(cfg)
    all_folds = sorted(prep.folds[FOLD_COL].astype(int).unique().tolist())
    wanted = cfg.folds if cfg.folds is not None else all_folds
    unknown = sorted(set(wanted) - set(all_folds))
    if unknown:
        raise ValueError(f"fold(s) {unknown} not in {cfg.folds_file} (folds: {all_folds})")
    key = model_hash(cfg)
    write_yaml(run_dir / CONFIG_FILE, {**config_dict(cfg), "git_commit": git_commit(),
                                       "model_hash": key, "data_config": _plain(prep.data_cfg)})
    results: dict[int, dict[str, Any]] = {}
    for fold in wanted:
        fold_dir = run_dir / f"fold{fold}"
        done = _read_done(fold_dir, key)
        if done is None:
            result = train_fold(prep, fold, on_epoch_end)
            write_predictions(fold_dir / OOF_FILE, result.oof)
            if result.test is not None:
                write_predictions(fold_dir / TEST_FILE, result.test)
            oof_scores = _score_frame(prep, result.oof)
            done = {"model_hash": key, "history": result.history, "scores": oof_scores}
            write_json(fold_dir / "done.json", done)
            # the fold's final weights are in model.safetensors; resumable state is no longer needed
            shutil.rmtree(fold_dir / "checkpoints", ignore_errors=True)
            print(format_summary(f"{cfg.name} fold {fold}", oof_scores))
        else:
            print(f"{cfg.name} fold {fold}: up to date ({fold_dir / 'done.json'})")
        results[fold] = done
    summary = {"folds": {str(k): v for k, v in results.items()}, "model_hash": key,
               "seconds": round(time.time() - started, 1)}
    finished = [f for f in all_folds if _read_done(run_dir / f"fold{f}", key) is not None]
    if finished == all_folds:
        summary.update(_combine(prep, all_folds, run_dir))
        print(format_summary(f"{cfg.name} OOF", summary["overall"]))
    else:
        print(f"{len(finished)} of {len(all_folds)} folds done; oof.csv and test.csv are written "
              "when every fold is")
    subset = pd.concat([pd.read_csv(run_dir / f"fold{f}" / OOF_FILE, dtype={ID_COL: str})
                        for f in wanted])
    summary["trained_folds"] = list(wanted)
    summary["trained_folds_log_loss"] = _score_frame(prep, subset)["log_loss"]
    return summary


def _combine(prep: Prepared, folds: list[int], run_dir: Path) -> dict[str, Any]:
    oof = pd.concat([pd.read_csv(run_dir / f"fold{f}" / OOF_FILE, dtype={ID_COL: str})
                     for f in folds])
    oof = oof.set_index(ID_COL).loc[prep.folds[ID_COL]].reset_index()
    write_predictions(run_dir / OOF_FILE, oof)
    if prep.test_cache is not None:
        tests = [pd.read_csv(run_dir / f"fold{f}" / TEST_FILE, dtype={ID_COL: str})
                 .set_index(ID_COL) for f in folds]
        test = sum(t[list(CLASSES)] for t in tests) / len(tests)
        test = test.div(test.sum(axis=1), axis=0).loc[prep.dataset.test[ID_COL]].reset_index()
        write_predictions(run_dir / TEST_FILE, test)
    overall = _score_frame(prep, oof)
    per_fold = {str(f): _score_frame(prep, oof[oof[FOLD_COL] == f]) for f in folds}
    metrics = {"overall": overall, "per_fold": per_fold, "git_commit": git_commit()}
    write_json(run_dir / METRICS_FILE, metrics)
    return {"overall": overall}


def _score_frame(prep: Prepared, frame: pd.DataFrame) -> dict[str, Any]:
    y = np.array([prep.label_of[i] for i in frame[ID_COL]])
    return score(y, frame[list(CLASSES)].to_numpy())


def _read_done(fold_dir: Path, key: str) -> dict[str, Any] | None:
    path = fold_dir / "done.json"
    if not (path.exists() and (fold_dir / OOF_FILE).exists()):
        return None
    done = json.loads(path.read_text())
    return done if done.get("model_hash") == key else None


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


# --------------------------------------------------------------------------------------------
# command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--name", help="run name: outputs go to RUNS_DIR/NAME/")
    parser.add_argument("--data", help="DrivenData folder")
    parser.add_argument("--folds-file", help="folds file written by `kaggle-style folds`")
    parser.add_argument("--runs-dir")
    parser.add_argument("--backbone", help="any timm model name")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--fold", type=int, action="append", dest="fold_list",
                        help="train only this fold (repeatable)")
    parser.add_argument("--resume", action="store_true", default=None,
                        help="continue each unfinished fold from its last checkpoint")
    parser.add_argument("--quiet", action="store_true", help="no progress bars (CI logs)")


def run(args: argparse.Namespace) -> int:
    cfg = resolve_config(
        TrainConfig, args.config, args.overrides,
        name=args.name, data=args.data, folds_file=args.folds_file, runs_dir=args.runs_dir,
        backbone=args.backbone, epochs=args.epochs, folds=args.fold_list, resume=args.resume,
        progress=False if args.quiet else None,
    )
    run_training(cfg)
    return 0
