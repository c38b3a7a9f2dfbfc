"""What `kaggle-style ensemble` blends and how: one typed config, checked before any work."""

from __future__ import annotations

from dataclasses import field
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field

from kaggle_style.config import Count, Fraction, NonNegative, Positive, Whole, stage_config
from kaggle_style.constants import META_FILE
from kaggle_style.ensemble.detections import DEFAULT_THRESHOLDS
from kaggle_style.ensemble.sequences import DEFAULT_GAPS, DEFAULT_POOL_WEIGHTS
from kaggle_style.ensemble.sites import DEFAULT_STRENGTHS
from kaggle_style.task import Task


def _mode(value: object) -> object:
    """YAML reads a bare off/on as false/true: both spellings are accepted."""
    return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value


# auto: applied only where the nested estimate improves
Mode = Annotated[Literal["off", "auto", "on"], BeforeValidator(_mode)]
Weight = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
NonEmpty = Field(min_length=1)


@stage_config
class EnsembleConfig:
    """Every key can be set in configs/ensemble*.yaml or with `--set KEY=VALUE`.

    `labels`, `train_features` (sites of the OOF ids), `features` (sites of the test ids) and
    `meta` (info-bar readings of both) default to the files inside `data`.
    """

    runs: list[str] = field(default_factory=list)
    """run folders, each with oof.csv + test.csv"""
    data: str = "data/demo"
    """DrivenData folder: the defaults of the paths below"""
    labels: str | None = None
    """train_labels.csv"""
    out: str | None = None
    """ensemble run folder to write"""
    space: Literal["prob", "logprob", "auto"] = "auto"
    """blend probabilities or log-probabilities (auto: the lower nested log loss)"""
    temperature: bool = True
    """temperature-scale the blend (one scalar fitted on the OOF predictions)"""
    stacking: bool | Literal["auto"] = "auto"
    """stack the members with a regression (true: always; auto: only if nested it wins)"""
    stacking_c: Positive = 1.0
    """inverse L2 strength of the stacking regression"""
    site_adapt: Mode = "auto"
    """per-site prior correction (auto: only where the nested estimate improves)"""
    site_strengths: Annotated[list[NonNegative], NonEmpty] = field(
        default_factory=lambda: list(DEFAULT_STRENGTHS)
    )
    """strengths of the site correction to choose from"""
    features: str | None = None
    """test_features.csv"""
    train_features: str | None = None
    """train_features.csv"""
    meta: str | None = None
    """meta.csv (kaggle-style meta); default DATA/meta.csv if present"""
    sequences: Mode = "auto"
    """pool log-probabilities over bursts (needs meta and sites)"""
    sequence_gaps: Annotated[list[Positive], NonEmpty] = field(
        default_factory=lambda: list(DEFAULT_GAPS)
    )
    """seconds between frames of one burst to choose from"""
    sequence_weights: Annotated[list[Weight], NonEmpty] = field(
        default_factory=lambda: list(DEFAULT_POOL_WEIGHTS)
    )
    """weights of a burst's pooled log-probabilities to choose from"""
    time_adjust: Mode = "auto"
    """hour-of-day and night flag (needs meta)"""
    time_c: Positive = 0.1
    """inverse L2 strength of the time weights (best on synthetic bursts)"""
    time_harmonics: Annotated[int, Field(ge=1, le=3)] = 2
    """daily sin/cos cycles of the hour: 1 day/night, 2 dawn/dusk too"""
    detection_stacking: Mode = "auto"
    """per-image member weights (needs detections)"""
    detections: str | None = None
    """detections.json (MegaDetector batch format) of all images"""
    detection_thresholds: Annotated[list[Fraction], NonEmpty] = field(
        default_factory=lambda: list(DEFAULT_THRESHOLDS)
    )
    """detector confidences that make the per-image gate's features"""
    detection_c: Positive = 0.1
    """inverse L2 strength of the per-image gate weights"""
    n_starts: Count = 3
    """optimiser starts for the weights (equal weights + random)"""
    seed: Whole = 0
    """seed of the optimiser's random starts"""
    task: str | None = None
    """the task file or name (configs/tasks/NAME.yaml); default: what folds recorded beside
    folds/folds.csv, else conservision"""

    def labels_path(self, task: Task) -> Path:
        if self.labels:
            return Path(self.labels)
        return Path(self.data) / (task.tables.labels or task.tables.train)

    def train_features_path(self, task: Task) -> Path:
        if self.train_features:
            return Path(self.train_features)
        return Path(self.data) / task.tables.train

    def test_features_path(self, task: Task) -> Path | None:
        """The test table (None: the test ids are the submission format's, one group each)."""
        if self.features:
            return Path(self.features)
        return Path(self.data) / task.tables.test if task.tables.test else None

    def meta_path(self) -> Path:
        return Path(self.meta) if self.meta else Path(self.data) / META_FILE
