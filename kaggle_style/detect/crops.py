"""Animal crops at several detection thresholds + a manifest (library of `kaggle-style crop`).

Which threshold and padding make the best classifier input is a question for the trainer, so
crops are made once for every threshold asked for and a manifest says, per (id, threshold),
which file to read. An image with no box over a threshold falls back to its full frame.

The cache is keyed: `crops/<key>/` where key hashes what decides the pixels of a crop (the
detector, its weights, the boxes themselves, padding, mode, minimum size, JPEG quality).
Another detector, other weights or another padding land in another folder, so stale crops are
never reused; the same key reuses every crop already on disk, so an interrupted run resumes.
A crop file belongs to one box (`<id>__b<k>.jpg`, k = the box's place in the detections
file), not to a threshold: the same box chosen at five thresholds is stored once.

Manifest columns: `id, threshold, crop_path, x, y, w, h, conf, fallback`.
- x, y, w, h: the region the crop shows (padded, clipped box), normalised to the frame;
  0, 0, 1, 1 for a fallback.
- conf: the box's confidence; for a fallback, the image's best animal confidence (0 if none),
  a feature the trainer may use.
- crop_path: in the file, relative to the manifest's folder (crops) or absolute (fallbacks:
  the original image); `load_manifest` makes every path absolute.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
from pydantic import Field

from kaggle_style.config import Count, Fraction, NonNegative, Whole, config_dict, stage_config
from kaggle_style.constants import ID_COL
from kaggle_style.data.crop_manifest import MANIFEST_COLUMNS
from kaggle_style.data.images import MAX_PIXELS, BadImageError, frame_size
from kaggle_style.detect import mdjson
from kaggle_style.detect.sources import (
    KEY_COL,
    PATH_COL,
    animal_categories,
    image_table,
    load_rgb,
    match_entries,
)
from kaggle_style.errors import UserError
from kaggle_style.files import (
    atomic_path,
    check_outputs,
    disk_full_error,
    git_commit,
    is_disk_full,
    write_csv,
    write_yaml,
)

MANIFEST = "manifest.csv"
CROP_CONFIG = "crop_config.yaml"
FULL_FRAME = (0.0, 0.0, 1.0, 1.0)


@stage_config
class CropConfig:
    """Options of the crop stage (defaults < --config YAML < --set < flags)."""

    detections: Path = Path("detections/detections.json")
    """MegaDetector JSON (any producer)"""
    data: Path | None = None
    """DrivenData folder: ids are DrivenData ids (or --images)"""
    images: Path | None = None
    """a folder of images: ids are relative paths (or --data)"""
    thresholds: Annotated[list[Fraction], Field(min_length=1)] = field(
        default_factory=lambda: [0.05, 0.1, 0.2, 0.35, 0.5]
    )
    """confidence thresholds: one crop cache per threshold"""
    pad: NonNegative = 0.1
    """padding on each side, as a fraction of the box's width / height"""
    mode: Literal["best", "all"] = "best"
    """best box per image, or every box as a sample"""
    min_size: Count = 32
    """smallest crop side in px (smaller crops grow around their centre)"""
    max_boxes: Count = 10
    """--mode all: at most this many boxes per image and threshold"""
    jpeg_quality: Annotated[int, Field(ge=1, le=100)] = 95
    """JPEG quality of the cached crops"""
    num_workers: Whole = 2
    """cropping processes"""
    out: Path = Path("crops")
    """crop cache folder"""
    max_pixels: Count = MAX_PIXELS
    """largest image in pixels; larger ones are unreadable (decompression bombs)"""


@dataclass(frozen=True)
class _Job:
    """One image's crops to make: picklable, for the worker processes."""

    src: str
    boxes: tuple[tuple[str, tuple[float, float, float, float]], ...]
    """(dst, normalised bbox)"""
    pad: float
    min_size: int
    quality: int
    max_pixels: int = MAX_PIXELS


def crop_region(
    bbox: tuple[float, float, float, float], pad: float, min_size: int, width: int, height: int
) -> tuple[int, int, int, int]:
    """Pixel (left, top, right, bottom) of a padded box, at least min_size where the frame
    allows, clipped to the frame. Padding is relative to the box so small and large animals
    keep the same share of context."""
    x, y, w, h = (float(v) for v in bbox)
    left, right = (x - pad * w) * width, (x + w + pad * w) * width
    top, bottom = (y - pad * h) * height, (y + h + pad * h) * height
    left, right = _grow(left, right, min_size, width)
    top, bottom = _grow(top, bottom, min_size, height)
    eps = 1e-6  # (0.2 + 0.2 + 0.02) * 200 is 84.00000000000001: not a reason for pixel 85
    left_px = max(0, math.floor(left + eps))
    top_px = max(0, math.floor(top + eps))
    right_px = min(width, max(left_px + 1, math.ceil(right - eps)))
    bottom_px = min(height, max(top_px + 1, math.ceil(bottom - eps)))
    return left_px, top_px, right_px, bottom_px


def _grow(lo: float, hi: float, min_size: int, limit: int) -> tuple[float, float]:
    """Widen [lo, hi] to min_size around its centre, shifted back inside [0, limit]."""
    size = min(float(min_size), float(limit))
    if hi - lo >= size:
        return max(0.0, lo), min(float(limit), hi)
    centre = (lo + hi) / 2
    lo, hi = centre - size / 2, centre + size / 2
    if lo < 0:
        lo, hi = 0.0, size
    if hi > limit:
        lo, hi = limit - size, float(limit)
    return lo, hi


def _make_crops(job: _Job) -> tuple[tuple[int, int] | None, str | None]:
    """Write the job's missing crops; return the frame size, or None and why it is unreadable.
    A write that fails (a full disk) is raised, never mistaken for an unreadable image."""
    try:
        size = frame_size(job.src, job.max_pixels)
        missing = [(dst, box) for dst, box in job.boxes if not os.path.exists(dst)]
        if not missing:
            return size, None
        image = load_rgb(job.src, job.max_pixels)
    except BadImageError as err:
        return None, str(err)
    for dst, box in missing:
        region = crop_region(box, job.pad, job.min_size, *image.size)
        with atomic_path(dst) as tmp:
            image.crop(region).save(tmp, format="JPEG", quality=job.quality)
    return image.size, None


def cache_key(detections: mdjson.DetectionFile, cfg: CropConfig) -> str:
    """12 hex digits over everything that decides a crop's pixels."""
    boxes = json.dumps(
        sorted((k, [d.to_json() for d in v]) for k, v in detections.images.items()),
        sort_keys=True,
    )
    payload = {
        "detector": detections.info.get("detector"),
        "weights": detections.info.get("detector_weights"),
        "weights_sha256": detections.info.get("detector_weights_sha256"),
        "boxes_sha256": hashlib.sha256(boxes.encode()).hexdigest(),
        "pad": cfg.pad,
        "mode": cfg.mode,
        "min_size": cfg.min_size,
        "jpeg_quality": cfg.jpeg_quality,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


def _crop_name(image_id: str, index: int) -> str:
    safe = "/".join(p for p in image_id.replace("\\", "/").split("/") if p not in ("", ".", ".."))
    return f"{safe}__b{index}.jpg"


def _selected(
    dets: list[mdjson.Detection], animals: set[str], threshold: float, mode: str, max_boxes: int
) -> list[tuple[int, mdjson.Detection]]:
    """(index in the file, detection) of the animal boxes used at this threshold, best first."""
    ranked = sorted(
        (
            (i, d)
            for i, d in enumerate(dets)
            if d.category in animals and d.conf >= threshold and d.bbox[2] > 0 and d.bbox[3] > 0
        ),
        key=lambda item: (-item[1].conf, item[0]),
    )
    return ranked[: 1 if mode == "best" else max_boxes]


def _plan(
    table: pd.DataFrame, detections: mdjson.DetectionFile, cfg: CropConfig, folder: Path
) -> tuple[list[dict[str, Any]], dict[str, _Job]]:
    """Manifest rows (crop regions filled in later) and the crop jobs, per image."""
    animals = animal_categories(detections)
    entries = match_entries(detections, list(table[KEY_COL]))
    rows: list[dict[str, Any]] = []
    jobs: dict[str, _Job] = {}
    unmatched = 0
    for image_id, key, path in zip(table[ID_COL], table[KEY_COL], table[PATH_COL], strict=True):
        entry = entries[key]
        unmatched += entry is None
        dets = entry if isinstance(entry, list) else []
        best_conf = max((d.conf for d in dets if d.category in animals), default=0.0)
        boxes: dict[str, tuple[float, float, float, float]] = {}
        for threshold in cfg.thresholds:
            chosen = _selected(dets, animals, threshold, cfg.mode, cfg.max_boxes)
            for index, det in chosen:
                dst = folder / _crop_name(image_id, index)
                boxes[str(dst)] = det.bbox
                rows.append(
                    {
                        ID_COL: image_id,
                        "threshold": threshold,
                        "crop_path": str(dst),
                        "bbox": det.bbox,
                        "conf": det.conf,
                        "fallback": False,
                    }
                )
            if not chosen:
                rows.append(
                    {
                        ID_COL: image_id,
                        "threshold": threshold,
                        "crop_path": str(path),
                        "bbox": None,
                        "conf": best_conf,
                        "fallback": True,
                    }
                )
        jobs[image_id] = _Job(
            str(path), tuple(boxes.items()), cfg.pad, cfg.min_size, cfg.jpeg_quality, cfg.max_pixels
        )
    if unmatched:
        print(
            f"crop: {unmatched} image(s) have no entry in the detections file: full frames",
            file=sys.stderr,
        )
    return rows, jobs


def _run_jobs(jobs: dict[str, _Job], workers: int, folder: Path) -> dict[str, Any]:
    """Frame size per image id (None: unreadable), making the missing crops on the way."""
    from tqdm import tqdm

    ids = [i for i, job in jobs.items() if job.boxes]  # full frames need no reading
    todo = [jobs[i] for i in ids]
    try:
        if workers > 1:
            with ProcessPoolExecutor(workers) as pool:
                results = list(
                    tqdm(
                        pool.map(_make_crops, todo, chunksize=16),
                        total=len(todo),
                        desc="crop",
                        unit="img",
                        disable=None,
                    )
                )
        else:
            results = [_make_crops(j) for j in tqdm(todo, desc="crop", unit="img", disable=None)]
    except OSError as err:
        if is_disk_full(err):
            raise disk_full_error(err, folder, "crops") from err
        raise
    failed = [(i, str(why)) for i, (size, why) in zip(ids, results, strict=True) if size is None]
    if failed and len(failed) == len(ids):
        _refuse_if_none_readable(jobs, failed, folder)
    if failed:
        shown = "; ".join(f"{i}: {why}" for i, why in failed[:3])
        print(
            f"crop: {len(failed)} unreadable image(s) fall back to full frames ({shown})",
            file=sys.stderr,
        )
    return {i: size for i, (size, _) in zip(ids, results, strict=True)}


def _refuse_if_none_readable(
    jobs: dict[str, _Job], failed: list[tuple[str, str]], folder: Path
) -> None:
    """Every image with a box is unreadable: unless one without a box reads (its header only),
    the manifest would point at unreadable frames only, so nothing is written."""
    for job in jobs.values():
        if not job.boxes:
            try:
                frame_size(job.src, job.max_pixels)
                return
            except BadImageError:
                continue
    raise UserError(
        f"none of the {len(jobs)} images can be read (e.g. {failed[0][0]}: {failed[0][1]}); "
        f"nothing written to {folder}: check the images"
    )


def _finish_rows(
    rows: list[dict[str, Any]], jobs: dict[str, _Job], sizes: dict[str, Any], cfg: CropConfig
) -> pd.DataFrame:
    out = []
    for row in rows:
        size = sizes.get(row[ID_COL])
        if row["bbox"] is None or size is None:
            region = FULL_FRAME
            if not row["fallback"]:  # an unreadable image: no crop could be made
                row = {**row, "crop_path": jobs[row[ID_COL]].src, "fallback": True}
        else:
            width, height = size
            left, top, right, bottom = crop_region(row["bbox"], cfg.pad, cfg.min_size, *size)
            region = (left / width, top / height, (right - left) / width, (bottom - top) / height)
        out.append(
            {
                **{k: v for k, v in row.items() if k != "bbox"},
                **dict(zip("xywh", region, strict=True)),
            }
        )
    frame = pd.DataFrame(out, columns=list(MANIFEST_COLUMNS))
    # An unreadable image's boxes all became the same full-frame row.
    return frame.drop_duplicates([ID_COL, "threshold", "crop_path"], ignore_index=True)


def _write_manifest(frame: pd.DataFrame, path: Path) -> Path:
    """Crop paths under the manifest's folder become relative, so the cache can move.

    Every path here was built under an already resolved folder, so a string prefix test suffices:
    a per-row `Path.resolve()` would dominate a re-run at 100k rows.
    """
    base = os.path.join(str(path.parent.resolve()), "")
    cut = len(base)

    def rel(p: str) -> str:
        norm = os.path.normpath(p)
        return norm[cut:].replace(os.sep, "/") if norm.startswith(base) else p

    stored = frame.assign(crop_path=[rel(p) for p in frame["crop_path"]])
    return write_csv(path, stored, float_format=None)  # shortest exact repr: 0.05, not 0.0500..3


def run_crops(cfg: CropConfig) -> Path:
    """Make (or reuse) every crop; write `<out>/<key>/manifest.csv`, its config, and the
    pointer `<out>/manifest.csv`; return the keyed manifest's path."""
    check_outputs(
        {"out": cfg.out}, {"detections": cfg.detections, "data": cfg.data, "images": cfg.images}
    )
    detections = mdjson.read(cfg.detections)
    table = image_table(cfg.data, cfg.images)
    key = cache_key(detections, cfg)
    folder = (Path(cfg.out) / key).resolve()
    rows, jobs = _plan(table, detections, cfg, folder)
    sizes = _run_jobs(jobs, cfg.num_workers, folder)
    manifest = _finish_rows(rows, jobs, sizes, cfg)
    path = _write_manifest(manifest, folder / MANIFEST)
    write_yaml(
        folder / CROP_CONFIG,
        {
            **config_dict(cfg),
            "key": key,
            "detections_info": detections.info,
            "git_commit": git_commit(),
        },
    )
    _write_manifest(manifest, Path(cfg.out) / MANIFEST)
    crops = int((~manifest["fallback"]).sum())
    if not any(job.boxes for job in jobs.values()):  # a valid manifest: every image read whole
        print(
            f"crop: no box reaches any threshold ({', '.join(map(str, cfg.thresholds))}): every "
            "row is its full frame, so crop recipes train on full frames",
            file=sys.stderr,
        )
    print(
        f"crop: {len(manifest)} rows ({crops} crops, {len(manifest) - crops} full-frame) -> {path}",
        file=sys.stderr,
    )
    return path
