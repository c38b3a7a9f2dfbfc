"""What `kaggle-style tune` and `tune-export` do, typed and checked before any storage is opened.

The trained recipe itself is a TrainConfig (`--config` + `--set`); these are the study's knobs.
"""

from __future__ import annotations

from dataclasses import field
from pathlib import Path
from typing import Literal

from kaggle_style.config import Count, Name, NonNegative, Positive, Whole, stage_config

Pruner = Literal["median", "hyperband", "none"]
ObjectiveKind = Literal["train", "synthetic"]


@stage_config
class TuneConfig:
    """One tuning worker: which study, where it lives, how many trials this worker adds."""

    study: Name
    """study name (shared by every worker)"""
    storage: str | None = None
    """sqlite:///FILE.db (null: sqlite:///studies/STUDY.db), postgresql+psycopg2://USER:PASS@HOST/DB
    or mysql+pymysql://... for several boxes, journal:///PATH.log for a shared filesystem"""
    config: Path | None = None
    """the train recipe (with its search_space)"""
    overrides: list[str] = field(default_factory=list)
    """`--set KEY=VALUE` on the recipe"""
    n_trials: Count | None = 10
    """trials this worker adds (each worker counts its own)"""
    timeout: Positive | None = None
    """seconds after which this worker starts no new trial"""
    pruner: Pruner = "median"
    """how unpromising trials are stopped early"""
    pruner_startup_trials: Whole = 5
    """median pruner: complete trials before any pruning"""
    pruner_warmup_steps: Whole = 0
    """epochs of a trial before it may be pruned"""
    sampler_seed: int | None = None
    """TPE seed (give each worker its own)"""
    heartbeat_interval: Whole = 60
    """seconds between a worker's heartbeats (RDB storages only; 0: off)"""
    grace_period: Count | None = None
    """seconds without a heartbeat before a trial is failed (null: twice the interval)"""
    max_retry: Whole = 3
    """times a trial whose worker died is queued again"""
    objective: ObjectiveKind = "train"
    """synthetic: no training, a cheap deterministic loss of the values (to try storages and
    workers)"""
    synthetic_seconds: NonNegative = 0.0
    """synthetic objective: seconds per epoch"""
    quiet: bool = False
    """no progress bars"""


@stage_config
class ExportConfig:
    """`tune-export`: the study to read and the train config to write."""

    study: Name
    """the study to read"""
    out: Path
    """the train config file to write"""
    storage: str | None = None
    """the study's storage (null: sqlite:///studies/STUDY.db)"""
    name: Name | None = None
    """run name in the written config (null: STUDY-best)"""
