"""The meta.csv contract: one row per image with its clock, camera, night flag and sequence.

Columns: id, datetime (ISO 8601), hour (0-24), camera, night (0/1), confidence (0-1), sequence
("<site>/<n>"). Empty means "could not be read", never a guess. `meta_frame` serves any list of
images (`predict` on a new deployment); `build_meta` a DrivenData folder (`kaggle-style meta`);
`data.meta_file.read_meta` is how every stage reads the file back.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from kaggle_style.config import NonNegative, Whole, stage_config
from kaggle_style.constants import (
    FILEPATH_COL,
    ID_COL,
    META_FILE,
    SITE_COL,
)
from kaggle_style.data.meta_file import MAX_YEAR, META_COLUMNS, MIN_YEAR, MetaError
from kaggle_style.errors import MAX_IDS_SHOWN
from kaggle_style.files import check_outputs, usable_cpus, write_csv
from kaggle_style.meta import infobar, ocr
from kaggle_style.meta.sequences import DEFAULT_GAP_SECONDS, assign_sequences

CHUNK = 32  # images per Tesseract call: one page of crops


@stage_config
class MetaConfig:
    """What `kaggle-style meta` reads and writes."""

    data: str = "data/demo"
    """DrivenData folder (train_features.csv, test_features.csv)"""
    out: str = META_FILE
    """CSV to write"""
    gap_seconds: NonNegative = DEFAULT_GAP_SECONDS
    """frames of a site within this many seconds form one sequence"""
    workers: Whole = 0
    """processes (0: one per CPU core)"""
    progress: bool = True
    """progress lines"""
    task: str | None = None
    """the task file or name; default: the one folds recorded, else conservision"""


@dataclass(frozen=True)
class Reading:
    """What one frame says: empty fields where nothing could be read."""

    datetime: str = ""
    hour: float = float("nan")
    camera: str = ""
    night: int | None = None
    confidence: float = 0.0
    odd: str = ""
    """why an odd frame was left unread (listed by the stage, not written)"""


def read_frames(paths: Sequence[str | Path]) -> list[Reading]:
    """Each frame's reading, in order: the strips on one Tesseract page, other text a line each.

    An odd frame (unreadable, tiny, a strip-like shape, text Tesseract refuses, a clock outside
    the years pandas holds) becomes an unread row with its reason, never a failure of the stage.
    """
    crops: list[list[infobar.TextCrop]] = []
    spreads: list[float | None] = []
    odd: list[str] = []
    for path in paths:
        crops.append([])
        spreads.append(None)
        odd.append("")
        try:
            with Image.open(path) as image:
                image.load()
                odd[-1] = odd_shape(image.size)
                if not odd[-1]:
                    crops[-1] = infobar.text_crops(image)
                    spreads[-1] = infobar.channel_spread(np.asarray(image.convert("RGB")))
        except (OSError, UnidentifiedImageError, ValueError) as err:
            odd[-1] = f"unreadable ({type(err).__name__})"
        except Exception as err:  # any odd frame is one unread row
            odd[-1] = f"no info bar found ({type(err).__name__}: {err})"
    strips = [c.images[0] for cs in crops for c in cs if c.layout in infobar.STRIP_LAYOUTS]
    strip_words = iter(_strip_words(strips))
    readings = []
    for frame_crops, spread, why in zip(crops, spreads, odd, strict=True):
        camera = next((c.layout for c in frame_crops if c.layout in infobar.STRIP_LAYOUTS), "")
        found = None
        for crop in frame_crops:
            if crop.layout in infobar.STRIP_LAYOUTS:
                found = _parse_strip(crop, next(strip_words))
            else:
                found, told = _read_band(crop)
                camera = camera or told
            if found is not None:
                break
        if found is not None and not MIN_YEAR <= found[0].year <= MAX_YEAR:
            why, found = f"its clock reads the year {found[0].year}", None
        readings.append(replace(_reading(found, camera, spread), odd=why))
    return readings


MIN_SIDE = 16  # px: no info bar fits in less
MAX_ASPECT = 8.0  # camera frames are 4:3 to 21:9; a 100:1 strip is no frame


def odd_shape(size: tuple[int, int]) -> str:
    """Why a frame of this size cannot hold an info bar, or ''."""
    width, height = size
    if min(width, height) < MIN_SIDE or max(width, height) > MAX_ASPECT * min(width, height):
        return f"odd frame size {width}x{height}"
    return ""


def _strip_words(strips: list[Image.Image]) -> list[list[ocr.Word]]:
    """The words of every strip; a page Tesseract refuses is read strip by strip."""
    try:
        return ocr.read_words(strips)
    except Exception:  # e.g. "Image too large": retry one strip at a time
        out = []
        for strip in strips:
            try:
                out.append(ocr.read_words([strip])[0])
            except Exception:  # this strip alone is unreadable text
                out.append([])
        return out


Found = tuple[dt.datetime, float]  # the time read and its confidence


def _parse_strip(crop: infobar.TextCrop, words: list[ocr.Word]) -> Found | None:
    parsed = infobar.parse_stamp(ocr.line_of(words), crop.layout)
    if parsed is None:
        return None
    return parsed[0], ocr.confidence_of(words, parsed[1])


def _read_band(crop: infobar.TextCrop) -> tuple[Found | None, str]:
    """Text over a picture: every image of the band must give the same date and time. Also
    the camera, where the text names it."""
    when, confidence, camera = None, 1.0, ""
    for image in crop.images:
        try:
            words = ocr.read_line(image)
        except Exception:  # text Tesseract refuses is text not read
            return None, camera
        line = ocr.line_of(words)
        layout = crop.layout
        if "bushnell" in line.lower():
            layout = camera = infobar.BUSHNELL_OVERLAY
        parsed = infobar.parse_stamp(line, layout)
        if parsed is None or (when is not None and parsed[0] != when):
            return None, camera
        when = parsed[0]
        confidence = min(confidence, ocr.confidence_of(words, parsed[1]))
    return (None if when is None else (when, confidence)), camera


def _reading(found: Found | None, camera: str, spread: float | None) -> Reading:
    if found is None:
        night = None if spread is None else infobar.night_flag(spread, None)
        return Reading(camera=camera, night=night)
    when, confidence = found
    hour = infobar.hour_of(when)
    night = None if spread is None else infobar.night_flag(spread, hour)
    return Reading(when.isoformat(), round(hour, 6), camera, night, round(confidence, 3))


def read_all(
    paths: Sequence[str | Path], workers: int = 0, progress: bool = False
) -> list[Reading]:
    """Every frame's reading, `workers` processes over chunks of CHUNK frames."""
    ocr.tesseract_version()  # fail before any work if Tesseract is missing
    paths = [str(p) for p in paths]
    chunks = [paths[i : i + CHUNK] for i in range(0, len(paths), CHUNK)]
    workers = min(workers or usable_cpus(), max(1, len(chunks)))
    out: list[Reading] = []
    started = time.perf_counter()
    if workers == 1:
        results: Any = map(read_frames, chunks)
        pool = None
    else:
        pool = ProcessPoolExecutor(max_workers=workers)
        results = pool.map(read_frames, chunks)
    try:
        for k, chunk_out in enumerate(results, 1):
            out.extend(chunk_out)
            if progress and (k % 20 == 0 or k == len(chunks)):
                rate = len(out) / max(1e-9, time.perf_counter() - started)
                print(
                    f"meta: {len(out)}/{len(paths)} frames read ({rate:.1f} frames/s)", flush=True
                )
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return out


def meta_frame(
    ids: Sequence[str] | np.ndarray | pd.Series,
    paths: Sequence[str | Path],
    sites: Sequence[str] | np.ndarray | pd.Series,
    gap_seconds: float = DEFAULT_GAP_SECONDS,
    workers: int = 0,
    progress: bool = False,
    all_unreadable_is_an_error: bool = False,
) -> pd.DataFrame:
    """The meta.csv rows of these images (any folder: `predict` on a new deployment); an
    unreadable frame is an unread row, unless every frame is and the caller refuses that."""
    if not len(ids) == len(paths) == len(sites):
        raise ValueError(f"{len(ids)} ids, {len(paths)} paths, {len(sites)} sites: one each")
    readings = read_all(paths, workers, progress)
    odd = [(i, r.odd) for i, r in zip(ids, readings, strict=True) if r.odd]
    unreadable = [r.odd.startswith("unreadable") for r in readings]
    if all_unreadable_is_an_error and unreadable and all(unreadable):
        raise MetaError(
            f"none of the {len(readings)} frames can be read (e.g. {paths[0]}: {odd[0][1]}); "
            "nothing written: check the images"
        )
    if odd:
        shown = "; ".join(f"{i}: {why}" for i, why in odd[:MAX_IDS_SHOWN])
        more = f" (+{len(odd) - MAX_IDS_SHOWN} more)" if len(odd) > MAX_IDS_SHOWN else ""
        print(f"meta: {len(odd)} odd frame(s) left unread: {shown}{more}", file=sys.stderr)
    frame = pd.DataFrame(
        {
            ID_COL: [str(i) for i in ids],
            "datetime": [r.datetime for r in readings],
            "hour": np.array([r.hour for r in readings], dtype=float),
            "camera": [r.camera for r in readings],
            "night": pd.array([r.night for r in readings], dtype="Int64"),
            "confidence": [r.confidence for r in readings],
        }
    )
    frame["sequence"] = assign_sequences(list(sites), frame["datetime"], gap_seconds)
    return frame[list(META_COLUMNS)]


def build_meta(cfg: MetaConfig) -> pd.DataFrame:
    """meta.csv for every train and test image of a competition folder; written to `cfg.out`."""
    from kaggle_style.data.tables import load_competition_data, read_features
    from kaggle_style.task import DEFAULT_FOLDS, load_task

    root = Path(cfg.data)
    check_outputs({"out": cfg.out}, {"data": root})
    task = load_task(cfg.task, folds=DEFAULT_FOLDS)
    if task.camera_trap is None or not task.camera_trap.info_bar:
        raise MetaError(
            f"task {task.name}: meta reads camera-trap info bars, and the task has no "
            "camera_trap part with info_bar: true; skip `meta` for this competition"
        )
    train_table = root / task.tables.train
    if not train_table.is_file():
        raise MetaError(f"{train_table}: not found; give --data the competition folder")
    if task.images.column is None:  # patterns: the files are found with the tables
        data = load_competition_data(root, task)
        tables = [data.train, data.test]
    else:
        tables = [read_features(train_table, task, "train")]
        if task.tables.test and (root / task.tables.test).is_file():
            tables.append(read_features(root / task.tables.test, task, "test"))
    features = pd.concat(tables, ignore_index=True)
    paths = [root / p for p in features[FILEPATH_COL]]
    missing = [str(p) for p, ok in zip(paths, map(Path.is_file, paths), strict=True) if not ok]
    if missing:
        raise MetaError(
            f"{len(missing)} image(s) listed in {root} are missing, e.g. {missing[0]}; "
            "check --data and the filepath column"
        )
    started = time.perf_counter()
    frame = meta_frame(
        features[ID_COL],
        paths,
        features[SITE_COL],
        cfg.gap_seconds,
        cfg.workers,
        cfg.progress,
        all_unreadable_is_an_error=True,  # a meta.csv of unread rows only would pass for one
    )
    seconds = time.perf_counter() - started
    write_csv(cfg.out, frame, float_format="%.8g")  # hours to 0.01 s
    if not (frame["datetime"] != "").any():  # a valid file: unread clocks are empty cells
        print(
            f"meta: WARNING: no clock read in any of the {len(frame)} frames: {cfg.out} holds "
            "no time, hour or joined sequence (the ensemble skips its time and sequence steps)",
            file=sys.stderr,
        )
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
