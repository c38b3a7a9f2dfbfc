"""What the trainer reads: samples per view, the cached-pixel dataset, seeded sampling, loaders."""

from __future__ import annotations

import random
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, get_worker_info

from kaggle_style.constants import FOLD_COL, ID_COL, LABEL_COL
from kaggle_style.data.cache_forms import CompressedPixels, open_pixels
from kaggle_style.data.images import ImageCache, build_cache, cache_key, cache_size_for
from kaggle_style.data.tables import CompetitionData, load_competition_data, read_folds
from kaggle_style.errors import UserError
from kaggle_style.files import usable_cpus
from kaggle_style.task import load_task
from kaggle_style.training.config import TrainConfig

if TYPE_CHECKING:
    import albumentations as A


@dataclass(frozen=True)
class Samples:
    """Training or test samples: one row per view (an image can have several crops)."""

    ids: np.ndarray  # image id of each sample
    paths: list[str]

    def __len__(self) -> int:
        return len(self.paths)


def image_views(
    full: dict[str, str], view: str, manifest: str | Path, threshold: float
) -> dict[str, list[str]]:
    """The files each image is seen through: its frame, its detector crops, or both.

    The one place for the view choice: training and `predict` on new deployments both call it.
    """
    if view == "full":
        return {i: [p] for i, p in full.items()}
    from kaggle_style.data.crop_manifest import crop_paths, load_manifest

    manifest_path = Path(manifest)
    if not manifest_path.is_file():
        raise UserError(
            f"view={view!r} needs the crops manifest {manifest_path}; run `make crops` "
            "(kaggle-style detect + crop) first, or set view: full"
        )
    crops = crop_paths(load_manifest(manifest_path), threshold)
    missing = [i for i in full if i not in crops]
    if missing:
        raise UserError(
            f"{manifest_path}: no crops at threshold {threshold} for {len(missing)} image(s), "
            f"e.g. {', '.join(map(str, missing[:5]))}; rerun `make crops` for this data folder"
        )
    return {
        i: [str(p) for p in crops[i]] + ([full[i]] if view == "crop+full" else []) for i in full
    }


def build_samples(frame: pd.DataFrame, root: Path, cfg: TrainConfig) -> Samples:
    """Full frames, detector crops, or both, per `cfg.view`."""
    full = {i: str(root / p) for i, p in zip(frame[ID_COL], frame["filepath"], strict=True)}
    views = image_views(full, cfg.view, cfg.crops_manifest, cfg.crop_threshold)
    ids = [i for i, paths in views.items() for _ in paths]
    paths = [p for plist in views.values() for p in plist]
    return Samples(ids=np.asarray(ids, dtype=object), paths=paths)


class CachedImages(Dataset):
    """Cached uint8 images through an albumentations transform.

    Items are `(index, seed)` from `SeededSampler` so that each sample's augmentation depends only
    on (seed, fold, epoch, position): identical across worker counts and after a resume.
    """

    def __init__(
        self, pixels_file: Path, rows: np.ndarray, targets: np.ndarray, transform: A.Compose
    ) -> None:
        self.pixels_file = pixels_file
        self.rows = rows
        self.targets = targets
        self.transform = transform
        self._pixels: np.ndarray | CompressedPixels | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[torch.Tensor, int | torch.Tensor]:
        index, seed = item if isinstance(item, tuple) else (item, None)
        if self._pixels is None:  # opened lazily: each worker maps the file itself
            self._pixels = open_pixels(self.pixels_file)
            if get_worker_info() is not None:
                import cv2

                cv2.setNumThreads(0)  # the workers are the parallelism: no OpenCV pool in each
        if seed is not None:
            # One generator pair for the whole pipeline. `set_random_seed` seeds every transform
            # alike, so their draws coincide (each flipped image was also colour-jittered), and
            # builds two generators per transform per image (~0.3 ms).
            self.transform.set_random_state(np.random.default_rng(seed), random.Random(seed))
        image = self.transform(image=np.asarray(self._pixels[self.rows[index]]))["image"]
        target = self.targets[index]  # a class index, or a vector (training.pseudo_labels)
        return image, int(target) if np.ndim(target) == 0 else torch.from_numpy(target)


class PseudoLabelled(Dataset):
    """The labelled training samples, then the test samples with their pseudo-labels: one
    dataset, so `SeededSampler` shuffles and seeds both alike."""

    def __init__(self, labelled: CachedImages, pseudo: CachedImages) -> None:
        self.labelled, self.pseudo = labelled, pseudo

    def __len__(self) -> int:
        return len(self.labelled) + len(self.pseudo)

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[torch.Tensor, int | torch.Tensor]:
        index, seed = item if isinstance(item, tuple) else (item, None)
        part = self.labelled if index < len(self.labelled) else self.pseudo
        index -= 0 if part is self.labelled else len(self.labelled)
        return part[(index, seed) if seed is not None else index]


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
class FoldInputs:
    """What every fold shares: tables, folds, samples and their image caches."""

    cfg: TrainConfig
    competition: CompetitionData
    folds: pd.DataFrame
    train_samples: Samples
    test_samples: Samples
    train_cache: ImageCache
    test_cache: ImageCache | None
    data_cfg: dict[str, Any]
    label_of: dict[str, int]
    fold_of: dict[str, int]

    @property
    def classes(self) -> tuple[str, ...]:
        return self.competition.classes


def default_workers(cfg: TrainConfig) -> int:
    if cfg.num_workers >= 0:
        return cfg.num_workers
    return min(12, max(1, usable_cpus() - 1)) if torch.cuda.is_available() else 0


@dataclass
class CachePlan:
    """What a run's two image caches hold: the backbone's data config, the size, the samples."""

    data_cfg: dict[str, Any]
    cache_size: int
    train: Samples
    test: Samples

    def keys(self, cfg: TrainConfig) -> list[str]:
        """The cache folders `prepare_data` builds (`clean-cache` keeps these)."""
        return [
            cache_key(s.paths, self.cache_size, cfg.cache_form, cfg.max_pixels)
            for s in (self.train, self.test)
            if len(s)
        ]


def cache_plan(cfg: TrainConfig, competition: CompetitionData) -> CachePlan:
    from kaggle_style.models import create_model, data_config

    data_cfg = data_config(
        create_model(cfg.backbone, competition.task.num_classes, image_size=cfg.image_size),
        cfg.image_size,
    )
    return CachePlan(
        data_cfg,
        cache_size_for(int(data_cfg["input_size"][-1]), cfg.cache_scale),
        build_samples(competition.train, competition.root, cfg),
        build_samples(competition.test, competition.root, cfg),
    )


def load_training_data(cfg: TrainConfig) -> CompetitionData:
    """The tables through the run's task (`cfg.task`, else the one recorded beside the folds)."""
    task = load_task(cfg.task, folds=cfg.folds_file)
    return load_competition_data(cfg.data, task, allow_outside_data=cfg.allow_outside_data)


def prepare_data(cfg: TrainConfig) -> FoldInputs:
    """Read and check tables and folds, then decode every image once into the cache."""
    competition = load_training_data(cfg)
    folds = read_folds(cfg.folds_file, competition.train)
    plan = cache_plan(cfg, competition)
    data_cfg, cache_size = plan.data_cfg, plan.cache_size
    train_samples, test_samples = plan.train, plan.test
    workers = max(1, default_workers(cfg)) if len(train_samples) > 256 else 0
    train_cache = build_cache(
        train_samples.paths,
        cache_size,
        cfg.cache_dir,
        workers,
        cfg.progress,
        desc="cache train",
        form=cfg.cache_form,
        max_pixels=cfg.max_pixels,
    )
    test_cache = None
    if len(test_samples):
        test_cache = build_cache(
            test_samples.paths,
            cache_size,
            cfg.cache_dir,
            workers,
            cfg.progress,
            desc="cache test",
            form=cfg.cache_form,
            max_pixels=cfg.max_pixels,
        )
        _check_test_images(test_samples, test_cache)
    _warn_bad_train_images(train_cache)
    return FoldInputs(
        cfg=cfg,
        competition=competition,
        folds=folds,
        train_samples=train_samples,
        test_samples=test_samples,
        train_cache=train_cache,
        test_cache=test_cache,
        data_cfg=data_cfg,
        label_of={
            i: competition.task.class_index[c]
            for i, c in zip(folds[ID_COL], folds[LABEL_COL], strict=True)
        },
        fold_of=dict(zip(folds[ID_COL], folds[FOLD_COL].astype(int), strict=True)),
    )


def _check_test_images(samples: Samples, cache: ImageCache) -> None:
    """A submission needs every test id: an unreadable test image stops the run before training."""
    usable = pd.Series(cache.ok).groupby(samples.ids).any()
    bad_ids = usable.index[~usable.to_numpy()].tolist()
    if bad_ids:
        details = "; ".join(cache.errors[i] for i in list(cache.errors)[:5])
        raise UserError(
            f"{len(bad_ids)} test image(s) cannot be read, e.g. {', '.join(bad_ids[:5])} "
            f"({details}); a submission needs every test id: replace them and rerun (list in "
            f"{cache.folder}/bad_images.csv)"
        )


def _warn_bad_train_images(cache: ImageCache) -> None:
    if cache.errors:
        warnings.warn(
            f"{len(cache.errors)} training image(s) cannot be read and are left out of training "
            f"(listed in {cache.folder}/bad_images.csv)",
            stacklevel=2,
        )


def normalize_on_device(choice: str, use_cuda: bool, augment_on: str = "worker") -> bool:
    """Where pixels become normalised floats: on a GPU the workers send uint8 (a quarter of the
    bytes) and the device normalises; on a CPU the workers do it (they run beside the
    model, no transfer to save), unless the device augments (it needs the uint8 batches)."""
    return choice == "device" or (choice == "auto" and (use_cuda or augment_on == "device"))


def batch_normalizer(
    data_cfg: dict[str, Any], on_device: bool, device: torch.device
) -> Callable[[torch.Tensor], torch.Tensor]:
    """What the loop applies to each batch: identity for worker-normalised floats, else
    albumentations' `Normalize` formula on the device for uint8 batches."""
    if not on_device:
        return lambda images: images
    mean = torch.tensor(data_cfg["mean"], device=device).view(1, -1, 1, 1) * 255.0
    scale = 1.0 / (torch.tensor(data_cfg["std"], device=device).view(1, -1, 1, 1) * 255.0)
    return lambda images: (images.float() - mean) * scale


def worker_transforms(
    data_cfg: dict[str, Any], augment: str, strength: float, in_worker: bool, augment_on: str
) -> tuple[Any, Any]:
    """(training, evaluation) transforms the loader workers run: with `augment_on: device` they
    only resize (`training.device_augment` does the rest); `in_worker`: they also normalise."""
    from kaggle_style.data.transforms import eval_transform, train_transform

    evaluation = eval_transform(data_cfg, normalize=in_worker)
    if augment_on == "device":
        return eval_transform(data_cfg, normalize=False), evaluation
    return train_transform(data_cfg, augment, strength, normalize=in_worker), evaluation


def loader_kwargs(workers: int, use_cuda: bool) -> dict[str, Any]:
    """DataLoader settings for this machine: the trainer and the benchmark share them."""
    return {
        "num_workers": workers,
        "pin_memory": use_cuda,
        "persistent_workers": workers > 0,
        "prefetch_factor": 4 if workers else None,
    }


@dataclass
class FoldData:
    """One fold's loaders and the rows (samples) they read."""

    train_loader: DataLoader
    val_loader: DataLoader
    train_rows: np.ndarray
    val_rows: np.ndarray
    train_targets: np.ndarray


def fold_loaders(prep: FoldInputs, fold: int, use_cuda: bool) -> FoldData:
    """Train on the other folds' readable samples; validate on this fold's."""
    cfg, samples, cache = prep.cfg, prep.train_samples, prep.train_cache
    in_worker = not normalize_on_device(cfg.normalize_on, use_cuda, cfg.augment_on)
    sample_fold = np.array([prep.fold_of[i] for i in samples.ids])
    targets = np.array([prep.label_of[i] for i in samples.ids])
    train_rows = np.flatnonzero((sample_fold != fold) & cache.ok)
    val_rows = np.flatnonzero((sample_fold == fold) & cache.ok)
    pixels_file = cache.pixels_file
    train_transform, eval_transform = worker_transforms(
        prep.data_cfg, cfg.augment, cfg.augment_strength, in_worker, cfg.augment_on
    )
    train_ds: CachedImages | PseudoLabelled
    train_ds = CachedImages(pixels_file, train_rows, targets[train_rows], train_transform)
    if cfg.pseudo_labels is not None:
        train_ds = with_pseudo_labels(prep, fold, train_ds)
    val_ds = CachedImages(pixels_file, val_rows, targets[val_rows], eval_transform)
    kw = loader_kwargs(default_workers(cfg), use_cuda)
    train_loader = DataLoader(
        train_ds,
        batch_size=cfg.batch_size,
        sampler=SeededSampler(len(train_ds), seed=cfg.seed * 1000 + fold),
        drop_last=len(train_ds) > cfg.batch_size,
        **kw,
    )
    val_loader = DataLoader(val_ds, batch_size=cfg.batch_size * 2, **kw)
    return FoldData(train_loader, val_loader, train_rows, val_rows, targets[train_rows])


def with_pseudo_labels(prep: FoldInputs, fold: int, labelled: CachedImages) -> PseudoLabelled:
    """Fold k's training set plus the test images its sources' fold-k models labelled; every
    target a vector (probabilities, then the loss weight)."""
    from kaggle_style.training.pseudo_labels import fold_targets, labelled_vectors

    cfg, samples, cache = prep.cfg, prep.test_samples, prep.test_cache
    assert cfg.pseudo_labels is not None  # fold_loaders calls this only with them
    if cache is None:
        raise UserError(
            f"pseudo_labels: {cfg.data} has no test images to learn from; remove "
            "the pseudo_labels key"
        )
    ids, vectors = fold_targets(
        cfg.pseudo_labels, cfg.runs_dir, fold, list(dict.fromkeys(samples.ids))
    )
    print(
        f"{cfg.name} fold {fold}: {len(ids)} of {len(set(samples.ids))} test images "
        f"pseudo-labelled (from {', '.join(cfg.pseudo_labels['from'])}, fold {fold})"
    )
    row_of = {i: n for n, i in enumerate(ids)}
    rows = np.flatnonzero(np.array([i in row_of for i in samples.ids], dtype=bool) & cache.ok)
    pseudo = CachedImages(
        cache.pixels_file, rows, vectors[[row_of[i] for i in samples.ids[rows]]], labelled.transform
    )
    labelled = CachedImages(
        labelled.pixels_file,
        labelled.rows,
        labelled_vectors(labelled.targets, cfg.label_smoothing, len(prep.classes)),
        labelled.transform,
    )
    return PseudoLabelled(labelled, pseudo)


def make_test_loader(prep: FoldInputs, use_cuda: bool) -> DataLoader:
    """The test images, in order, through the evaluation transform."""
    assert prep.test_cache is not None  # called only where the data has a test set
    return eval_loader(
        prep.test_cache.pixels_file,
        np.arange(len(prep.test_samples)),
        prep.data_cfg,
        prep.cfg,
        use_cuda,
    )


def eval_loader(
    pixels_file: Path, rows: np.ndarray, data_cfg: dict[str, Any], cfg: TrainConfig, use_cuda: bool
) -> DataLoader:
    """Cached rows, in order, through the evaluation transform: the test set, and `predict`
    on new images, so both see the pixels the same way."""
    from kaggle_style.data.transforms import eval_transform

    in_worker = not normalize_on_device(cfg.normalize_on, use_cuda, cfg.augment_on)
    dataset = CachedImages(
        pixels_file, rows, np.full(len(rows), -1), eval_transform(data_cfg, normalize=in_worker)
    )
    return DataLoader(
        dataset, batch_size=cfg.batch_size * 2, **loader_kwargs(default_workers(cfg), use_cuda)
    )
