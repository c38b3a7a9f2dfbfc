"""What the `tune` and `tune-export` commands call: one worker's trials, or the export."""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

import optuna

from kaggle_style.config import resolve_config
from kaggle_style.training.config import TrainConfig
from kaggle_style.tuning.config import ExportConfig, TuneConfig
from kaggle_style.tuning.distributed import process_rank
from kaggle_style.tuning.export import export_best
from kaggle_style.tuning.objective import run_study, synthetic_training
from kaggle_style.tuning.space import parse_search_space
from kaggle_style.tuning.study import (
    JOURNAL_PREFIX,
    TuneError,
    default_storage,
    make_pruner,
    masked,
    open_storage,
)


def tune(cfg: TuneConfig) -> optuna.Study | None:
    """Add this worker's trials to the study (created on first use); None on ranks > 0."""
    url = cfg.storage or default_storage(cfg.study)
    train_cfg = resolve_config(
        TrainConfig, cfg.config, cfg.overrides, progress=False if cfg.quiet else None
    )
    space = parse_search_space(train_cfg.search_space, train_cfg)
    if url.startswith(JOURNAL_PREFIX):
        print(
            "note: a journal storage has no heartbeat (Optuna 5): a trial whose worker dies "
            "stays RUNNING and is not retried; use an RDB storage for that",
            file=sys.stderr,
        )
    # Only rank 0 talks to the storage (the others follow its trials): two ranks creating an
    # SQLite study's tables at once fail with "table trials already exists".
    storage = None
    if process_rank()[0] == 0:
        storage = open_storage(url, cfg.heartbeat_interval or None, cfg.grace_period, cfg.max_retry)
    pruner = make_pruner(cfg.pruner, cfg.pruner_startup_trials, cfg.pruner_warmup_steps)
    train = None
    if cfg.objective == "synthetic":
        train = partial(synthetic_training, space=space, seconds=cfg.synthetic_seconds)
    study = run_study(
        train_cfg,
        cfg.study,
        storage,
        n_trials=cfg.n_trials,
        timeout=cfg.timeout,
        pruner=pruner,
        sampler_seed=cfg.sampler_seed,
        train=train,
    )
    if study is not None:
        _print_summary(study, url)
    return study


def export(cfg: ExportConfig) -> Path:
    url = cfg.storage or default_storage(cfg.study)
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).is_file():
        raise TuneError(
            f"no study file {url[len('sqlite:///') :]} (give --storage, the URL the "
            "tune workers used)"
        )
    return export_best(cfg.study, open_storage(url), cfg.out, cfg.name, storage_label=masked(url))


def _print_summary(study: optuna.Study, url: str) -> None:
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    print(
        f"study {study.study_name!r} on {masked(url)}: {len(study.trials)} trials, "
        f"{len(complete)} complete"
    )
    if complete:
        best = study.best_trial
        print(f"best: trial {best.number} value {best.value:.6f} {best.params}")
    target = url[len(JOURNAL_PREFIX) :] if url.startswith(JOURNAL_PREFIX) else masked(url)
    print(f"browse it: optuna-dashboard {target}")
