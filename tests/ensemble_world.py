"""A synthetic camera-trap world for the ensemble tests: skewed sites, bursts and activity hours.

Each site has its own class mix; each visit is a burst of 1-5 frames of one animal (its last
frames may be blank), seconds apart, at an hour drawn from its class's activity pattern; every
frame gets its own model noise besides the visit's (so pooling a burst helps) and the models
never see the hour (so the time step can help).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import softmax

from kaggle_style.constants import ID_COL, META_FILE, OOF_FILE, TEST_FILE
from kaggle_style.detect.mdjson import Detection, DetectionFile
from kaggle_style.detect.mdjson import write as write_detections
from kaggle_style.ensemble.base import Inputs, Meta, RowFacts
from kaggle_style.ensemble.chain import fixed_stream, run_step
from kaggle_style.ensemble.config import EnsembleConfig
from kaggle_style.ensemble.sequences import sequence_ids
from kaggle_style.ensemble.sites import (
    DEFAULT_STRENGTHS,
    _prepared,
    _row_losses,
    apply_sites,
    fit_sites,
)
from kaggle_style.prediction_files import make_frame, write_predictions
from kaggle_style.task import CONSERVISION_CLASSES as CLASSES

K = len(CLASSES)
NOCTURNAL = {"civet_genet", "leopard", "rodent"}
DIURNAL = {"monkey_prosimian", "bird"}
BLANK = CLASSES.index("blank")
MODELS = (("good", 1.2, 1.0), ("noisy", 1.8, 1.0), ("over", 1.2, 2.5))  # name, noise, sharpness


def _hour_weights(name: str) -> np.ndarray:
    hours = np.arange(24) + 0.5
    if name in NOCTURNAL:
        return np.exp(2.5 * np.cos(2 * np.pi * (hours - 1.0) / 24))
    if name in DIURNAL:
        return np.exp(2.5 * np.cos(2 * np.pi * (hours - 12.0) / 24))
    return np.ones(24)


@dataclass
class Part:
    """One side (OOF or test): labels, sites, meta and each model's probabilities."""

    ids: np.ndarray
    y: np.ndarray
    sites: np.ndarray
    meta: Meta
    probs: list[np.ndarray]
    boxes: np.ndarray | None = None  # object array of (boxes, 2) [confidence, share]


def _part(rng: np.random.Generator, prefix: str, n_sites: int, visits: int, unread: float) -> Part:
    hour_p = [_hour_weights(c) / _hour_weights(c).sum() for c in CLASSES]
    ys, sites, times, visit = [], [], [], []
    for s in range(n_sites):
        mix = rng.dirichlet(np.full(K, 0.6))
        for v in range(visits):
            label = rng.choice(K, p=mix)
            start = (
                rng.integers(0, 60) * 86400
                + rng.choice(24, p=hour_p[label]) * 3600
                + rng.integers(0, 3600)
            )
            frames = rng.integers(1, 6)
            stamps = start + np.cumsum(rng.integers(1, 8, frames))
            # The animal may leave before the burst ends: its last frames are blank.
            left = rng.random(frames) < np.linspace(0.0, 0.6, frames)
            ys += np.where(np.maximum.accumulate(left), BLANK, label).tolist()
            visit += [s * visits + v] * frames
            sites += [f"{prefix}{s:03d}"] * frames
            times += stamps.tolist()
    y, times_arr = np.array(ys), np.array(times, dtype=np.float64)
    hours = (times_arr % 86400) / 3600
    night = ((hours < 6) | (hours >= 19)).astype(float)
    lost = rng.random(len(y)) < unread
    times_arr[lost], hours[lost], night[lost] = np.nan, np.nan, np.nan
    # Frames of one visit share part of their noise (same animal, pose and light).
    difficulty = rng.normal(size=(len(y), K)) + rng.normal(size=(n_sites * visits, K))[visit]
    probs = [
        softmax(
            sharp
            * (2.0 * np.eye(K)[y] + noise * (0.5 * difficulty + rng.normal(size=(len(y), K)))),
            axis=1,
        )
        for _, noise, sharp in MODELS
    ]
    ids = np.array([f"{prefix}{i:06d}" for i in range(len(y))])
    return Part(ids, y, np.array(sites), Meta(times_arr, hours, night), probs)


def _detect(rng: np.random.Generator, part: Part, crop_model: bool) -> None:
    """Boxes for every row; with `crop_model`, model 0 fails where no box reaches 0.1."""
    boxes = np.empty(len(part.y), dtype=object)
    for i, label in enumerate(part.y):
        rows = []
        if label != BLANK and rng.random() < 0.7:
            rows.append([rng.uniform(0.4, 0.99), rng.uniform(0.02, 0.4)])
        if rng.random() < 0.3:  # a false box: a rock, a branch
            rows.append([rng.uniform(0.02, 0.3), rng.uniform(0.01, 0.1)])
        boxes[i] = np.array(rows, dtype=np.float64).reshape(-1, 2)
    part.boxes = boxes
    if crop_model:
        lost = np.array([not (b[:, 0] >= 0.1).any() for b in boxes])
        wrong = softmax(3.0 * rng.normal(size=(int(lost.sum()), K)), axis=1)
        part.probs[0] = part.probs[0].copy()
        part.probs[0][lost] = wrong


@dataclass
class World:
    oof: Part
    test: Part
    folds: np.ndarray

    def inputs(self) -> Inputs:
        return Inputs(
            names=[m[0] for m in MODELS],
            oof_ids=self.oof.ids,
            test_ids=self.test.ids,
            oof=self.oof.probs,
            test=self.test.probs,
            y=self.oof.y.copy(),
            folds=self.folds,
            oof_sites=self.oof.sites,
            test_sites=self.test.sites,
            oof_meta=self.oof.meta,
            test_meta=self.test.meta,
            oof_boxes=self.oof.boxes,
            test_boxes=self.test.boxes,
        )


def make_world(
    seed: int = 0,
    n_sites: int = 20,
    n_test_sites: int = 6,
    visits: int = 6,
    unread: float = 0.1,
    crop_model: bool = False,
) -> World:
    rng = np.random.default_rng(seed)
    oof = _part(rng, "S", n_sites, visits, unread)
    test = _part(rng, "T", n_test_sites, visits, unread)
    folds = np.array([int(s[1:]) % 5 for s in oof.sites])
    detector = np.random.default_rng(seed + 1000)
    _detect(detector, oof, crop_model)
    _detect(detector, test, crop_model)
    return World(oof, test, folds)


def _detections(world: World) -> DetectionFile:
    """The boxes as a MegaDetector batch file, keyed by the tables' file paths."""
    images = {}
    for part in (world.oof, world.test):
        for i, boxes in zip(part.ids, part.boxes, strict=True):
            images[f"x/{i}.jpg"] = [
                Detection("1", float(c), (0.1, 0.1, float(a), 1.0)) for c, a in boxes
            ]
    return DetectionFile(images=images)


def _meta_frame(part: Part) -> pd.DataFrame:
    stamps = pd.to_datetime(part.meta.times, unit="s")
    return pd.DataFrame(
        {
            ID_COL: part.ids,
            "datetime": [s.isoformat() if not pd.isna(s) else "" for s in stamps],
            "hour": part.meta.hours,
            "camera": "",
            "night": part.meta.night,
            "confidence": np.where(np.isfinite(part.meta.hours), 0.99, 0.0),
            "sequence": sequence_ids(part.sites, part.meta.times, 60.0),
        }
    )


def write_world(world: World, root: Path) -> list[str]:
    """Runs, labels, site tables and meta.csv in `root` (a DrivenData-like folder); run paths."""
    runs = []
    for i, (name, _, _) in enumerate(MODELS):
        folder = root / "runs" / name
        write_predictions(
            folder / OOF_FILE,
            make_frame(world.oof.ids, world.oof.probs[i], world.folds, classes=CLASSES),
        )
        write_predictions(
            folder / TEST_FILE, make_frame(world.test.ids, world.test.probs[i], classes=CLASSES)
        )
        runs.append(str(folder))
    labels = pd.DataFrame({ID_COL: world.oof.ids})
    labels[list(CLASSES)] = np.eye(K)[world.oof.y]
    labels.to_csv(root / "train_labels.csv", index=False)
    for name, part in (("train_features.csv", world.oof), ("test_features.csv", world.test)):
        pd.DataFrame(
            {ID_COL: part.ids, "filepath": [f"x/{i}.jpg" for i in part.ids], "site": part.sites}
        ).to_csv(root / name, index=False)
    pd.concat([_meta_frame(world.oof), _meta_frame(world.test)]).to_csv(
        root / META_FILE, index=False
    )
    write_detections(root / "detections.json", _detections(world))
    return runs


# ------------------------------------------------- fixtures the ensemble tests share


def model_probs(y: np.ndarray, noise: float, sharpness: float, rng: np.random.Generator):
    """softmax(sharpness * (signal on the true class + noise)); sharpness > 1 = over-confident."""
    logits = 2.0 * np.eye(K)[y] + noise * rng.normal(size=(len(y), K))
    return softmax(sharpness * logits, axis=1)


def write_synthetic(tmp_path: Path) -> dict:
    """Three runs (good, noisy, over-confident) over 600 OOF rows in 4 folds, plus labels."""
    rng = np.random.default_rng(0)
    n, n_test = 600, 120
    y = rng.integers(0, K, n)
    y_test = rng.integers(0, K, n_test)
    ids = np.array([f"ZJ{i:06d}" for i in range(n)])
    test_ids = np.array([f"ZT{i:06d}" for i in range(n_test)])
    folds = np.arange(n) % 4
    runs = {}
    for name, noise, sharp in [("good", 1.0, 1.0), ("noisy", 1.6, 1.0), ("over", 1.0, 4.0)]:
        folder = tmp_path / "runs" / name
        write_predictions(
            folder / OOF_FILE,
            make_frame(ids, model_probs(y, noise, sharp, rng), folds, classes=CLASSES),
        )
        write_predictions(
            folder / TEST_FILE,
            make_frame(test_ids, model_probs(y_test, noise, sharp, rng), classes=CLASSES),
        )
        runs[name] = folder
    labels = pd.DataFrame({ID_COL: ids})
    labels[list(CLASSES)] = np.eye(K)[y]
    labels.to_csv(tmp_path / "train_labels.csv", index=False)
    return {
        "root": tmp_path,
        "runs": runs,
        "labels": tmp_path / "train_labels.csv",
        "y": y,
        "ids": ids,
        "folds": folds,
    }


def synthetic_config(data: dict, names: list[str], out: str, **kw) -> EnsembleConfig:
    # data: the test's own folder, never the working directory's data/demo (after `make demo`)
    return EnsembleConfig(
        runs=[str(data["runs"][n]) for n in names],
        labels=str(data["labels"]),
        data=str(data["root"]),
        out=str(data["root"] / "runs" / out),
        stacking=False,
        site_adapt="off",
        n_starts=3,
        **kw,
    )


def written_world(tmp_path: Path) -> tuple[World, list[str], Path]:
    """The synthetic camera-trap world written as runs + a DrivenData folder with meta.csv."""
    world = make_world(seed=0)
    return world, write_world(world, tmp_path), tmp_path


def world_config(root: Path, runs: list[str], **kw) -> EnsembleConfig:
    return EnsembleConfig(runs=runs, data=str(root), out=str(root / "ens"), n_starts=1, **kw)


# The one-model nested site adaptation the tests compare the chain's step against.
@dataclass
class NestedSiteAdapt:
    """Strength and source prior fitted on k-1 folds and applied to the held-out fold."""

    probs: np.ndarray  # held-out adapted probabilities, one row per input row
    log_loss_before: float
    log_loss_after: float
    strength_per_fold: dict[str, float | None]


def nested_site_adapt(
    probs: np.ndarray,
    y: np.ndarray,
    sites: Sequence[object] | np.ndarray,
    folds: np.ndarray,
    strengths: Sequence[float] = DEFAULT_STRENGTHS,
) -> NestedSiteAdapt:
    """An honest estimate of what adaptation does to one model's OOF predictions."""
    y = np.asarray(y, dtype=np.int64)
    rows = RowFacts(y=y, folds=np.asarray(folds), sites=np.asarray(sites).astype(str))
    stream = fixed_stream(np.asarray(probs, np.float64), np.empty((0, probs.shape[1])), folds)
    result = run_step(
        stream,
        rows,
        RowFacts(sites=np.empty(0, str)),
        lambda p, r: fit_sites(p, r, strengths),
        apply_sites,
    )
    nested = result.stream.nested()
    if nested is None:
        raise ValueError("a nested estimate needs at least two folds")
    return NestedSiteAdapt(
        probs=nested,
        log_loss_before=float(_row_losses(_prepared(probs), y).mean()),
        log_loss_after=float(_row_losses(nested, y).mean()),
        strength_per_fold={k: v.strength for k, v in result.fold_params.items()},
    )
