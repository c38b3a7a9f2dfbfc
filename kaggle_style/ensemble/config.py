"""What `kaggle-style ensemble` blends and how: one typed config, checked before any work."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from kaggle_style.config import ConfigError
from kaggle_style.constants import META_FILE, TEST_FEATURES, TRAIN_FEATURES, TRAIN_LABELS
from kaggle_style.ensemble.detections import DEFAULT_THRESHOLDS
from kaggle_style.ensemble.sequences import DEFAULT_GAPS, DEFAULT_POOL_WEIGHTS
from kaggle_style.ensemble.sites import DEFAULT_STRENGTHS
from kaggle_style.errors import UserError

Mode = Literal["off", "auto", "on"]  # auto: applied only where the nested estimate improves


class EnsembleError(UserError):
    """Runs that cannot be blended as given."""


def _mode(value: object) -> object:
    """YAML reads a bare off/on as false/true: both spellings are accepted."""
    return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value


@dataclass
class EnsembleConfig:
    """Every key can be set in configs/ensemble*.yaml or with `--set KEY=VALUE`.

    `labels`, `train_features` (sites of the OOF ids), `features` (sites of the test ids) and
    `meta` (info-bar readings of both) default to the files inside `data`.
    """

    runs: list[str] = field(default_factory=list)  # run folders, each with oof.csv + test.csv
    data: str = "data/demo"  # DrivenData folder: the defaults of the paths below
    labels: str | None = None  # train_labels.csv
    out: str | None = None  # ensemble run folder to write
    space: Literal["prob", "logprob", "auto"] = "auto"  # auto: the lower nested log loss
    temperature: bool = True
    stacking: bool | Literal["auto"] = "auto"  # True: always use; "auto": only if nested wins
    stacking_c: float = 1.0  # inverse L2 strength of the stacking regression
    site_adapt: Mode | bool = "auto"
    site_strengths: list[float] = field(default_factory=lambda: list(DEFAULT_STRENGTHS))
    features: str | None = None  # test_features.csv
    train_features: str | None = None  # train_features.csv
    meta: str | None = None  # meta.csv (kaggle-style meta); default DATA/meta.csv if present
    sequences: Mode | bool = "auto"  # pool log-probabilities over bursts (needs meta and sites)
    sequence_gaps: list[float] = field(default_factory=lambda: list(DEFAULT_GAPS))  # seconds
    sequence_weights: list[float] = field(default_factory=lambda: list(DEFAULT_POOL_WEIGHTS))
    time_adjust: Mode | bool = "auto"  # hour-of-day and night flag (needs meta)
    time_c: float = 0.1  # inverse L2 strength of the time weights (0.1: best on synthetic bursts)
    time_harmonics: int = 2  # daily sin/cos cycles of the hour: 1 day/night, 2 dawn/dusk too
    detection_stacking: Mode | bool = "auto"  # per-image member weights (needs detections)
    detections: str | None = None  # detections.json (MegaDetector batch format) of all images
    detection_thresholds: list[float] = field(default_factory=lambda: list(DEFAULT_THRESHOLDS))
    detection_c: float = 0.1  # inverse L2 strength of the per-image gate weights
    n_starts: int = 3  # optimiser starts for the weights (equal weights + random)
    seed: int = 0

    def __post_init__(self) -> None:
        self.site_adapt = _mode(self.site_adapt)  # type: ignore[assignment]
        self.sequences = _mode(self.sequences)  # type: ignore[assignment]
        self.time_adjust = _mode(self.time_adjust)  # type: ignore[assignment]
        self.detection_stacking = _mode(self.detection_stacking)  # type: ignore[assignment]
        for key in ("site_adapt", "sequences", "time_adjust", "detection_stacking"):
            if getattr(self, key) not in ("off", "auto", "on"):
                raise ConfigError(f"{key}: {getattr(self, key)!r} is not one of off, auto, on")
        if self.space not in ("prob", "logprob", "auto"):
            raise ConfigError(f"space: {self.space!r} is not one of prob, logprob, auto")
        if self.stacking not in (True, False, "auto"):
            raise ConfigError(f"stacking: {self.stacking!r} is not one of true, false, auto")
        for key in ("stacking_c", "time_c", "detection_c"):
            value = getattr(self, key)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{key}: {value!r} must be a finite number > 0")
        self._check_list("site_strengths", lambda v: v >= 0, ">= 0")
        self._check_list("sequence_gaps", lambda v: v > 0, "> 0 seconds")
        self._check_list("sequence_weights", lambda v: 0 < v <= 1, "in (0, 1]")
        self._check_list("detection_thresholds", lambda v: 0 <= v <= 1, "in [0, 1]")
        if not 1 <= self.time_harmonics <= 3:
            raise ConfigError(f"time_harmonics: {self.time_harmonics} must be 1, 2 or 3")
        if self.n_starts < 1:
            raise ConfigError(f"n_starts: {self.n_starts} must be >= 1")
        if self.seed < 0:
            raise ConfigError(f"seed: {self.seed} must be >= 0")

    def _check_list(self, key: str, ok: object, what: str) -> None:
        values = getattr(self, key)
        bad = [v for v in values if not (math.isfinite(v) and ok(v))]  # type: ignore[operator]
        if not values or bad:
            raise ConfigError(f"{key}: {values!r} needs at least one value, each {what}")

    def labels_path(self) -> Path:
        return Path(self.labels) if self.labels else Path(self.data) / TRAIN_LABELS

    def train_features_path(self) -> Path:
        if self.train_features:
            return Path(self.train_features)
        return Path(self.data) / TRAIN_FEATURES

    def test_features_path(self) -> Path:
        return Path(self.features) if self.features else Path(self.data) / TEST_FEATURES

    def meta_path(self) -> Path:
        return Path(self.meta) if self.meta else Path(self.data) / META_FILE
