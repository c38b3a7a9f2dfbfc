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

    study: Name  # also the file of its default storage
    storage: str | None = None  # None: sqlite:///studies/STUDY.db
    config: Path | None = None  # the train recipe (with its search_space)
    overrides: list[str] = field(default_factory=list)  # `--set KEY=VALUE` on the recipe
    n_trials: Count | None = 10  # per worker
    timeout: Positive | None = None  # seconds after which this worker starts no new trial
    pruner: Pruner = "median"
    pruner_startup_trials: Whole = 5
    pruner_warmup_steps: Whole = 0
    sampler_seed: int | None = None
    heartbeat_interval: Whole = 60  # 0: no heartbeat (RDB storages only)
    grace_period: Count | None = None  # None: twice the heartbeat interval
    max_retry: Whole = 3
    objective: ObjectiveKind = "train"
    synthetic_seconds: NonNegative = 0.0
    quiet: bool = False


@stage_config
class ExportConfig:
    """`tune-export`: the study to read and the train config to write."""

    study: Name
    out: Path
    storage: str | None = None
    name: Name | None = None  # run name in the written config; None: STUDY-best
