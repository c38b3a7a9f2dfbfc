"""What `kaggle-style tune` and `tune-export` do, typed and checked before any storage is opened.

The trained recipe itself is a TrainConfig (`--config` + `--set`); these are the study's knobs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from kaggle_style.config import ConfigError, check_choices, check_range

Pruner = Literal["median", "hyperband", "none"]
ObjectiveKind = Literal["train", "synthetic"]


@dataclass
class TuneConfig:
    """One tuning worker: which study, where it lives, how many trials this worker adds."""

    study: str
    storage: str | None = None  # None: sqlite:///studies/STUDY.db
    config: Path | None = None  # the train recipe (with its search_space)
    overrides: list[str] = field(default_factory=list)  # `--set KEY=VALUE` on the recipe
    n_trials: int | None = 10  # per worker
    timeout: float | None = None  # seconds after which this worker starts no new trial
    pruner: Pruner = "median"
    pruner_startup_trials: int = 5
    pruner_warmup_steps: int = 0
    sampler_seed: int | None = None
    heartbeat_interval: int = 60  # 0: no heartbeat (RDB storages only)
    grace_period: int | None = None  # None: twice the heartbeat interval
    max_retry: int = 3
    objective: ObjectiveKind = "train"
    synthetic_seconds: float = 0.0
    quiet: bool = False

    def __post_init__(self) -> None:
        if not self.study.strip():
            raise ConfigError("study: give the study a name (every worker uses the same one)",
                              "study")
        check_choices(self)
        check_range(self, "n_trials", low=1, allow_none=True)
        check_range(self, "timeout", low=0, low_open=True, allow_none=True)
        for name in ("pruner_startup_trials", "pruner_warmup_steps", "heartbeat_interval",
                     "max_retry", "synthetic_seconds"):
            check_range(self, name, low=0)
        check_range(self, "grace_period", low=1, allow_none=True)


@dataclass
class ExportConfig:
    """`tune-export`: the study to read and the train config to write."""

    study: str
    out: Path
    storage: str | None = None
    name: str | None = None  # run name in the written config; None: STUDY-best
