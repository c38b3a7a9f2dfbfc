"""Read and write MegaDetector's batch-output format (format_version 1.4).

A file is `{"images": [{"file", "detections": [{"category", "conf", "bbox"}]}],
"detection_categories": {"1": "animal", ...}, "info": {...}}` with bbox = normalised
[x_min, y_min, width, height]. Files MegaDetector wrote elsewhere load unchanged, and what this
module does not use itself (a classifier's `classifications`, `classification_categories`)
is kept, so reading and writing such a file loses nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kaggle_style.detect.errors import DetectionsFileError
from kaggle_style.files import write_json

FORMAT_VERSION = "1.4"
DEFAULT_CATEGORIES = {"1": "animal", "2": "person", "3": "vehicle"}
_OWN_KEYS = frozenset({"images", "detection_categories", "info"})


def box(values: Any) -> tuple[float, float, float, float]:
    """A bbox as four floats; another count is a layout error (ValueError) where it is read."""
    x, y, w, h = (float(v) for v in values)
    return x, y, w, h


@dataclass(frozen=True)
class Detection:
    category: str
    conf: float
    bbox: tuple[float, float, float, float]  # normalised x, y, w, h
    # A species classifier's [class id, score] pairs, as MegaDetector's classifiers write them.
    classifications: tuple[tuple[str, float], ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "category": self.category,
            "conf": round(float(self.conf), 4),
            "bbox": [round(float(v), 4) for v in self.bbox],
        }
        if self.classifications:
            out["classifications"] = [[c, round(float(s), 4)] for c, s in self.classifications]
        return out


@dataclass
class DetectionFile:
    """All detections of one detector run, keyed by the image's path as written in the file."""

    images: dict[str, list[Detection]] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    categories: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_CATEGORIES))
    info: dict[str, Any] = field(default_factory=dict)
    # Other top-level keys (e.g. classification_categories), written back unchanged.
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        images = [
            {"file": f, "detections": [d.to_json() for d in dets]}
            for f, dets in self.images.items()
        ]
        images += [{"file": f, "failure": why} for f, why in self.failures.items()]
        info = {"format_version": FORMAT_VERSION, **self.info}
        return {
            "info": info,
            "detection_categories": self.categories,
            **self.extra,
            "images": images,
        }


def parse(obj: dict[str, Any]) -> DetectionFile:
    if "images" not in obj:
        raise ValueError("not a MegaDetector batch-output file: no 'images' list")
    out = DetectionFile(
        categories=dict(obj.get("detection_categories") or DEFAULT_CATEGORIES),
        info=dict(obj.get("info") or {}),
        extra={k: v for k, v in obj.items() if k not in _OWN_KEYS},
    )
    for entry in obj["images"]:
        name = entry["file"]
        if entry.get("failure") and not entry.get("detections"):
            out.failures[name] = str(entry["failure"])
            continue
        out.images[name] = [
            Detection(
                str(d["category"]),
                float(d["conf"]),
                box(d["bbox"]),
                tuple((str(c), float(s)) for c, s in d.get("classifications") or ()),
            )
            for d in entry.get("detections") or []
        ]
    return out


def read(path: str | Path) -> DetectionFile:
    """The file, or one `DetectionsFileError` naming it and what to do."""
    path = Path(path)
    if not path.is_file():
        raise DetectionsFileError(
            f"{path}: detections file not found; run `kaggle-style detect` "
            "first or pass --detections PATH"
        )
    try:
        with open(path, encoding="utf-8") as handle:
            return parse(json.load(handle))
    except (ValueError, KeyError, TypeError) as err:  # JSON, UTF-8 and layout errors
        raise DetectionsFileError(
            f"{path}: not a MegaDetector batch-output file ({type(err).__name__}: {err}); "
            "rerun `kaggle-style detect` or pass the right --detections"
        ) from err


def write(path: str | Path, detections: DetectionFile) -> Path:
    return write_json(path, detections.to_json())
