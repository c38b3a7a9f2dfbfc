"""What a real detector would say about a demo frame: boxes that jitter, miss and hallucinate."""

from __future__ import annotations

import numpy as np

from kaggle_style.detect import mdjson

BBox = tuple[float, float, float, float]  # normalised x, y, w, h


def simulate_detections(
    rng: np.random.Generator, bbox: BBox | None, miss_rate: float = 0.1
) -> list[mdjson.Detection]:
    """What a real detector would say: jittered boxes, misses, false boxes, noisy confidence."""
    dets = []
    small = bbox is not None and bbox[2] * bbox[3] < 0.002
    if bbox is not None and rng.random() >= miss_rate * (2 if small else 1):
        x, y, w, h = bbox
        box = (
            x + rng.normal(0, 0.04) * w,
            y + rng.normal(0, 0.04) * h,
            w * rng.uniform(0.92, 1.08),
            h * rng.uniform(0.92, 1.08),
        )
        conf = rng.uniform(0.05, 0.3) if rng.random() < 0.12 else rng.beta(5, 1.5) * 0.68 + 0.3
        dets.append(mdjson.Detection("1", float(conf), _clip_box(box)))
    n_false = rng.poisson(0.7 if bbox is None else 0.25)
    for _ in range(int(n_false)):
        w, h = rng.uniform(0.03, 0.2), rng.uniform(0.04, 0.25)
        box = (rng.uniform(0, 1 - w), rng.uniform(0.1, 0.95 - h), w, h)
        conf = rng.uniform(0.3, 0.55) if rng.random() < 0.05 else rng.uniform(0.02, 0.3)
        dets.append(mdjson.Detection("1", float(conf), _clip_box(box)))
    return sorted(dets, key=lambda d: -d.conf)


def _clip_box(box: tuple[float, float, float, float]) -> BBox:
    x0, y0 = min(max(box[0], 0.0), 1.0), min(max(box[1], 0.0), 1.0)
    x1, y1 = min(max(box[0] + box[2], 0.0), 1.0), min(max(box[1] + box[3], 0.0), 1.0)
    return (x0, y0, max(0.0, x1 - x0), max(0.0, y1 - y0))
