"""The meta.csv contract: one row per image with its clock, camera, night flag and sequence.

Columns: id, datetime (ISO 8601), hour (0-24), camera, night (0/1), confidence (0-1), sequence
("<site>/<n>"). Empty means "could not be read", never a guess. `meta_frame` serves any list of
images (`predict` on a new deployment); `build_meta` a DrivenData folder (`kaggle-style meta`);
`read_meta` is how the ensemble and the report read the file back.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from kaggle_style.config import ConfigError
from kaggle_style.constants import FILEPATH_COL, ID_COL, META_FILE, SITE_COL, TEST_FEATURES
from kaggle_style.constants import TRAIN_FEATURES
from kaggle_style.errors import UserError
from kaggle_style.io import write_csv
from kaggle_style.meta import infobar, ocr
from kaggle_style.meta.sequences import DEFAULT_GAP_SECONDS, assign_sequences

META_COLUMNS = (ID_COL, "datetime", "hour", "camera", "night", "confidence", "sequence")
CHUNK = 32  # images per Tesseract call: one page of crops


class MetaError(UserError):
    """A meta.csv that does not hold the contract's columns, or ids it should."""


@dataclass
class MetaConfig:
    """What `kaggle-style meta` reads and writes."""

    data: str = "data/demo"
    out: str = META_FILE
    gap_seconds: float = DEFAULT_GAP_SECONDS
    workers: int = 0  # 0: one per CPU core
    progress: bool = True

    def __post_init__(self) -> None:
        if not np.isfinite(self.gap_seconds) or self.gap_seconds < 0:
            raise ConfigError(f"gap_seconds: {self.gap_seconds} must be >= 0 seconds")
        if self.workers < 0:
            raise ConfigError(f"workers: {self.workers} must be >= 0 (0: one per CPU core)")


@dataclass(frozen=True)
class Reading:
    """What one frame says: empty fields where nothing could be read."""

    datetime: str = ""
    hour: float = float("nan")
    camera: str = ""
    night: int | None = None
    confidence: float = 0.0


def read_frames(paths: Sequence[str | Path]) -> list[Reading]:
    """Each frame's reading, in order (one Tesseract call for all of them)."""
    crops: list[list[infobar.TextCrop]] = []
    spreads: list[float | None] = []
    for path in paths:
        try:
            with Image.open(path) as image:
                image.load()
                crops.append(infobar.text_crops(image))
                spreads.append(infobar.channel_spread(np.asarray(image.convert("RGB"))))
        except (OSError, UnidentifiedImageError, ValueError):
            crops.append([])  # unreadable file: an unread row, never a failure of the stage
            spreads.append(None)
    flat = [image for cs in crops for c in cs for image in c.images]
    words = iter(ocr.read_words(flat))
    found = [[[next(words) for _ in c.images] for c in cs] for cs in crops]
    return [_reading(cs, f, s) for cs, f, s in zip(crops, found, spreads, strict=True)]


def _reading(crops: list[infobar.TextCrop], words: list[list[list[ocr.Word]]],
             spread: float | None) -> Reading:
    """The first crop whose images all give one date and time; the camera from the layout."""
    camera = crops[0].layout if crops and crops[0].layout in infobar.MDY_LAYOUTS else ""
    for crop, per_image in zip(crops, words, strict=True):
        lines = [ocr.line_of(found) for found in per_image]
        layout = crop.layout
        if layout in ("bottom", "top") and any("bushnell" in line.lower() for line in lines):
            layout = camera = infobar.BUSHNELL_OVERLAY
        parsed = [infobar.parse_stamp(line, layout) for line in lines]
        if parsed[0] is None or any(p is None or p[0] != parsed[0][0] for p in parsed):
            continue
        when = parsed[0][0]
        hour = infobar.hour_of(when)
        night = None if spread is None else infobar.night_flag(spread, hour)
        confidence = min(ocr.confidence_of(f, p[1]) for f, p in zip(per_image, parsed,
                                                                     strict=True) if p)
        return Reading(when.isoformat(), round(hour, 6), camera, night, round(confidence, 3))
    night = None if spread is None else infobar.night_flag(spread, None)
    return Reading(camera=camera, night=night)


def _chunk_readings(paths: list[str]) -> list[Reading]:
    return read_frames(paths)


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def read_all(paths: Sequence[str | Path], workers: int = 0,
             progress: bool = False) -> list[Reading]:
    """Every frame's reading, `workers` processes over chunks of CHUNK frames."""
    ocr.tesseract_version()  # fail before any work if Tesseract is missing
    paths = [str(p) for p in paths]
    chunks = [paths[i : i + CHUNK] for i in range(0, len(paths), CHUNK)]
    workers = min(workers or default_workers(), max(1, len(chunks)))
    out: list[Reading] = []
    started = time.perf_counter()
    if workers == 1:
        results: Any = map(_chunk_readings, chunks)
        pool = None
    else:
        pool = ProcessPoolExecutor(max_workers=workers)
        results = pool.map(_chunk_readings, chunks)
    try:
        for k, chunk_out in enumerate(results, 1):
            out.extend(chunk_out)
            if progress and (k % 20 == 0 or k == len(chunks)):
                rate = len(out) / max(1e-9, time.perf_counter() - started)
                print(f"meta: {len(out)}/{len(paths)} frames read ({rate:.1f} frames/s)",
                      flush=True)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return out


def meta_frame(
    ids: Sequence[str],
    paths: Sequence[str | Path],
    sites: Sequence[str],
    gap_seconds: float = DEFAULT_GAP_SECONDS,
    workers: int = 0,
    progress: bool = False,
) -> pd.DataFrame:
    """The meta.csv rows of these images (any folder: `predict` on a new deployment)."""
    if not len(ids) == len(paths) == len(sites):
        raise ValueError(f"{len(ids)} ids, {len(paths)} paths, {len(sites)} sites: one each")
    readings = read_all(paths, workers, progress)
    frame = pd.DataFrame({
        ID_COL: [str(i) for i in ids],
        "datetime": [r.datetime for r in readings],
        "hour": np.array([r.hour for r in readings], dtype=float),
        "camera": [r.camera for r in readings],
        "night": pd.array([r.night for r in readings], dtype="Int64"),
        "confidence": [r.confidence for r in readings],
    })
    frame["sequence"] = assign_sequences(list(sites), frame["datetime"], gap_seconds)
    return frame[list(META_COLUMNS)]


def build_meta(cfg: MetaConfig) -> pd.DataFrame:
    """meta.csv for every train and test image of a DrivenData folder; written to `cfg.out`."""
    from kaggle_style.data.tables import read_features

    root = Path(cfg.data)
    if not (root / TRAIN_FEATURES).is_file():
        raise MetaError(f"{root / TRAIN_FEATURES}: not found; give --data a DrivenData folder")
    tables = [read_features(root / TRAIN_FEATURES)]
    if (root / TEST_FEATURES).is_file():
        tables.append(read_features(root / TEST_FEATURES))
    features = pd.concat(tables, ignore_index=True)
    paths = [root / p for p in features[FILEPATH_COL]]
    missing = [str(p) for p, ok in zip(paths, map(Path.is_file, paths), strict=True) if not ok]
    if missing:
        raise MetaError(
            f"{len(missing)} image(s) listed in {root} are missing, e.g. {missing[0]}; "
            "check --data and the filepath column"
        )
    started = time.perf_counter()
    frame = meta_frame(features[ID_COL], paths, features[SITE_COL], cfg.gap_seconds,
                       cfg.workers, cfg.progress)
    seconds = time.perf_counter() - started
    write_csv(cfg.out, frame, float_format="%.6g")
    if cfg.progress:
        print(describe(frame, seconds))
    return frame


def describe(frame: pd.DataFrame, seconds: float) -> str:
    """The lines a user reads after the stage."""
    read = frame["datetime"] != ""
    cameras = frame["camera"].replace("", "unknown").value_counts()
    night = frame["night"]
    return (
        f"meta: {int(read.sum())}/{len(frame)} clocks read, "
        f"{frame['sequence'].nunique()} sequences; night {int((night == 1).sum())}, "
        f"day {int((night == 0).sum())}, undecided {int(night.isna().sum())}; cameras: "
        + ", ".join(f"{k} {v}" for k, v in cameras.items())
        + f"; {seconds:.1f} s ({len(frame) / max(seconds, 1e-9):.1f} frames/s)"
    )


def read_meta(path: str | Path, ids: Sequence[str] | None = None) -> pd.DataFrame:
    """meta.csv back as written (empty strings, NaN hours, nullable night), checked.

    With `ids`, every id must have a row (extra rows are fine: meta.csv covers train and test).
    """
    from kaggle_style.data.tables import read_csv

    path = Path(path)
    frame = read_csv(path, MetaError, dtype={ID_COL: str, "datetime": str, "camera": str,
                                             "sequence": str},
                     keep_default_na=False, na_values={"hour": [""], "night": [""]})
    missing = [c for c in META_COLUMNS if c not in frame.columns]
    if missing:
        raise MetaError(f"{path}: missing column(s) {', '.join(missing)}; rerun kaggle-style meta")
    frame["night"] = frame["night"].astype("Int64")
    if ids is not None:
        absent = sorted(set(map(str, ids)) - set(frame[ID_COL]))
        if absent:
            raise MetaError(
                f"{path}: no row for {len(absent)} id(s), e.g. {absent[0]}; rerun kaggle-style "
                "meta on the data folder these predictions come from"
            )
    return frame[list(META_COLUMNS)]
