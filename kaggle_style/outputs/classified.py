"""What every output is written from: the images, their clocks, sequences and boxes, and the
calibrated class probabilities of the run that classified them; plus the user's thresholds."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from kaggle_style.constants import SITE_COL
from kaggle_style.detect.mdjson import Detection, DetectionFile
from kaggle_style.errors import UserError

FILE_COL = "file"
# Columns of `Classified.images`: `datetime` is the camera's clock, ISO 8601 without a zone, ""
# where nothing was read; `sequence` is the meta stage's "<site>/<n>" (one visit).
# ... then one probability column per class (`Classified.classes`).
IMAGE_COLUMNS = (FILE_COL, SITE_COL, "datetime", "sequence")
NOT_CLASS_COLUMNS = frozenset({*IMAGE_COLUMNS, "id", "fold", "top_class", "filepath"})


@dataclass(frozen=True)
class Thresholds:
    """The user's choices: at most `top_k` classes per image, each with probability >=
    `min_prob`; boxes of the detector from `min_box_conf`. Nothing is cut by default."""

    top_k: int = 1
    min_prob: float = 0.0
    min_box_conf: float = 0.1

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise UserError(f"--top-k {self.top_k}: give 1 or more classes per image")
        for name in ("min_prob", "min_box_conf"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise UserError(f"--{name.replace('_', '-')} {value}: give a number in [0, 1]")


@dataclass
class Classified:
    """One classifier's output on a set of images."""

    images: pd.DataFrame  # IMAGE_COLUMNS, one row per readable image
    classifier: str  # the run's name
    commit: str  # the git commit the run was trained at ("" when unknown)
    detections: DetectionFile | None = None  # keyed by file; None: no detector ran
    failures: dict[str, str] = field(default_factory=dict)  # unreadable file -> why
    classes: tuple[str, ...] = ()  # the probability columns; () = every other column of images

    def __post_init__(self) -> None:
        if not self.classes:
            self.classes = tuple(c for c in self.images.columns if c not in NOT_CLASS_COLUMNS)
        missing = [c for c in (*IMAGE_COLUMNS, *self.classes) if c not in self.images.columns]
        if missing:
            raise ValueError(f"Classified.images lacks {missing}")
        self.images = self.images.reset_index(drop=True)
        self.images["datetime"] = self.images["datetime"].fillna("").astype(str)

    @property
    def probs(self) -> np.ndarray:
        return self.images[list(self.classes)].to_numpy(dtype=np.float64)

    @property
    def classified_by(self) -> str:
        commit = f" at git {self.commit[:12]}" if self.commit else ""
        return f"kaggle_style run {self.classifier}{commit}"

    def boxes(self, file: str, thresholds: Thresholds) -> list[Detection]:
        """The detector's boxes of one image from `min_box_conf`, most confident first."""
        found = self.detections.images.get(file, []) if self.detections else []
        kept = [d for d in found if d.conf >= thresholds.min_box_conf]
        return sorted(kept, key=lambda d: -d.conf)


def kept_classes(probs: np.ndarray, thresholds: Thresholds) -> list[list[tuple[int, float]]]:
    """Per row, (class index, probability) of its `top_k` most likely classes from `min_prob`,
    most likely first; an empty list where no class reaches `min_prob`."""
    order = np.argsort(-probs, axis=1, kind="stable")[:, : thresholds.top_k]
    out = []
    for row, classes in zip(probs, order, strict=True):
        out.append([(int(c), float(row[c])) for c in classes if row[c] >= thresholds.min_prob])
    return out
