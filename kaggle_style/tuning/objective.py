"""One trial = one training of the trial's config, reported per (fold, epoch) for pruning.

Under `accelerate launch` one trial is one multi-process training: rank 0 owns the study and
the trial; the other ranks train the values it sends and stop when it says so.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import optuna

from kaggle_style.training.config import TrainConfig
from kaggle_style.tuning.distributed import process_rank, share_from_main
from kaggle_style.tuning.space import (
    Param,
    default_params,
    epoch_stride,
    parse_search_space,
    sample,
    trial_config,
)
from kaggle_style.tuning.study import open_study, slug

EpochReport = Callable[[int, int, float], None]  # (fold, epoch, validation log loss)
TrainFn = Callable[[TrainConfig, EpochReport | None], dict[str, Any]]


def trial_name(study_name: str, number: int) -> str:
    return f"{slug(study_name)}-t{number}"


def synthetic_training(
    cfg: TrainConfig,
    on_epoch_end: EpochReport | None,
    space: Mapping[str, Param],
    seconds: float = 0.0,
) -> dict[str, Any]:
    """Stands in for `run_training` when testing storages and workers: a deterministic loss of
    the tuned values (best at a quarter of each range), falling per epoch, `seconds` an epoch."""
    target = 0.5 + sum((p.unit(getattr(cfg, p.name)) - 0.25) ** 2 for p in space.values())
    value = target
    for fold in cfg.folds if cfg.folds is not None else [0]:
        for epoch in range(cfg.epochs):
            time.sleep(seconds)
            value = target + 1.0 / (epoch + 1)
            if on_epoch_end is not None:
                on_epoch_end(fold, epoch, value)
    return {"trained_folds_log_loss": value}


def caught_errors() -> tuple[type[Exception], ...]:
    """Failures that end one trial, not the study: a diverging rate, a too-large batch."""
    import torch

    return (FloatingPointError, torch.cuda.OutOfMemoryError)


@dataclass
class Objective:
    """One trial: sample on rank 0, send the values to the other ranks, train, report each epoch
    and prune on rank 0's word (the same word on every rank, so all leave the trial together)."""

    cfg: TrainConfig
    space: Mapping[str, Param]
    study_name: str
    train: TrainFn
    world_size: int = 1

    def __call__(self, trial: optuna.Trial) -> float:
        """Rank 0, from `study.optimize`."""
        params = sample(self.space, trial)
        cfg = trial_config(self.cfg, params, trial_name(self.study_name, trial.number))
        trial.set_user_attr("run_dir", str(cfg.run_dir))
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        print(f"trial {trial.number} started: {params}", flush=True)
        share_from_main((trial.number, params), self.world_size)
        stride = epoch_stride(self.cfg, self.space)

        def report(fold: int, epoch: int, value: float) -> None:
            trial.report(value, fold * stride + epoch)
            if share_from_main(trial.should_prune(), self.world_size):
                raise optuna.TrialPruned(f"fold {fold} epoch {epoch + 1}: {value:.4f}")

        try:
            summary = self.train(cfg, report)
        except optuna.TrialPruned:
            shutil.rmtree(cfg.run_dir, ignore_errors=True)  # a pruned run's checkpoints: disk
            raise
        return float(summary["trained_folds_log_loss"])

    def follow(self, rank: int) -> int:
        """Ranks > 0: train each trial rank 0 sends, with its values, until it sends None."""
        done = 0
        while (message := share_from_main(None, self.world_size)) is not None:
            number, params = message
            print(f"rank {rank} follows trial {number}: {params}", flush=True)

            def report(fold: int, epoch: int, value: float) -> None:
                if share_from_main(None, self.world_size):
                    raise optuna.TrialPruned()

            try:
                self.train(
                    trial_config(self.cfg, params, trial_name(self.study_name, number)), report
                )
            except optuna.TrialPruned:
                pass  # rank 0 records the trial's state
            except caught_errors():
                pass  # (the same)
            done += 1
        return done


def run_study(
    cfg: TrainConfig,
    study_name: str,
    storage: optuna.storages.BaseStorage | None,  # None on ranks > 0: they never touch it
    *,
    n_trials: int | None,
    timeout: float | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
    sampler_seed: int | None = None,
    train: TrainFn | None = None,
) -> optuna.Study | None:
    """Add up to `n_trials` trials (per worker) to the study; None on ranks > 0."""
    space = parse_search_space(cfg.search_space, cfg)
    default_params(cfg, space)  # fail on an out-of-space default before touching the storage
    callbacks: list[Callable] = [_print_trial]
    if train is None:  # real trials log beside their runs; synthetic ones only try storages
        from kaggle_style.training.run import run_training
        from kaggle_style.training.tracking import TrialTracking

        train = run_training
        callbacks.append(TrialTracking(cfg.tracker, cfg.runs_dir, slug(study_name)))
    rank, world = process_rank()
    objective = Objective(cfg, space, study_name, train, world)
    if rank > 0:
        objective.follow(rank)
        return None
    assert storage is not None  # rank 0 is always given it
    sampler = optuna.samplers.TPESampler(seed=sampler_seed)
    study = open_study(storage, study_name, cfg, space, sampler=sampler, pruner=pruner)
    try:
        study.optimize(
            objective,
            n_trials=n_trials,
            timeout=timeout,
            catch=caught_errors(),
            callbacks=callbacks,
            gc_after_trial=True,
        )
    finally:
        share_from_main(None, world)  # the other ranks stop
    return study


def _print_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    label = "last value" if trial.state.name == "PRUNED" else "value"
    value = "" if trial.value is None else f" {label} {trial.value:.6f}"
    print(f"trial {trial.number} finished: {trial.state.name}{value}", flush=True)
