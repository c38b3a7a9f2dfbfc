"""MegaDetector's batch-output format with a species classifier's results: what Timelapse and
AddaxAI load for review.

Each of the detector's boxes from `--min-box-conf` carries `classifications: [[class id, p],
...]`, most likely first: the image's calibrated probabilities (the classifier sees the whole
image or its crops, not one box), cut to the user's `--top-k` and `--min-prob`. Boxes below
that confidence are written without classifications; an image that could not be read has a
`failure` and `detections: null`, as the format asks.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from kaggle_style.detect.mdjson import DetectionFile
from kaggle_style.errors import UserError
from kaggle_style.files import write_json
from kaggle_style.outputs.classified import FILE_COL, Classified, Thresholds, kept_classes


def classification_categories(classes: tuple[str, ...]) -> dict[str, str]:
    """MegaDetector's `classification_categories`: each class index as a string, its name."""
    return {str(k): name for k, name in enumerate(classes)}


def md_results(classified: Classified, thresholds: Thresholds) -> dict[str, Any]:
    """The batch-output dict (format 1.4)."""
    if classified.detections is None:
        raise UserError(
            "--format md needs the detector's boxes: pass detector --weights (or "
            "--detections FILE with `export`), and do not pass --no-detector"
        )
    from kaggle_style.detect.mdjson import Detection

    images: dict[str, list[Detection]] = {}
    kept = kept_classes(classified.probs, thresholds)
    for file, classes in zip(classified.images[FILE_COL], kept, strict=True):
        pairs = tuple((str(c), p) for c, p in classes)
        images[file] = [
            Detection(
                d.category, d.conf, d.bbox, pairs if d.conf >= thresholds.min_box_conf else ()
            )
            for d in classified.detections.images.get(file, [])
        ]
    info = {
        **classified.detections.info,
        "classifier": classified.classified_by,
        "classification_completion_time": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "classifier_metadata": {
            "top_k": thresholds.top_k,
            "min_prob": thresholds.min_prob,
            "min_box_conf": thresholds.min_box_conf,
            "probabilities": "calibrated, per image",
        },
    }
    failures = {
        f: why
        for f, why in {**classified.detections.failures, **classified.failures}.items()
        if f not in images
    }
    out = DetectionFile(
        images=images,
        failures=failures,
        info=info,
        categories=dict(classified.detections.categories),
        extra={"classification_categories": classification_categories(classified.classes)},
    ).to_json()
    for entry in out["images"]:
        if "failure" in entry:
            entry["detections"] = None
    return out


def write_md_results(classified: Classified, thresholds: Thresholds, out: Path) -> Path:
    return write_json(out, md_results(classified, thresholds))
