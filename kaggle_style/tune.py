"""Optuna studies over a train config's `search_space:`; the best trial exported as a config.

The search space is data, not code: each key of `search_space` names a `TrainConfig` field and
says how to sample it, so tuning a new backbone needs only a YAML file. A study lives in a shared
storage (SQLite file, PostgreSQL/MySQL, or an Optuna journal file), so any number of workers on
any number of boxes can add trials to it; its first trial is the config's own values, so the study
shows whether tuning beat them. Under `accelerate launch` one trial is one multi-process
training: rank 0 owns the trial and shares its parameters and prune decisions with the others.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import re
import shutil
import socket
import sys
import time
import typing
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from kaggle_style.config import ConfigError, add_config_arguments, config_dict, resolve_config
from kaggle_style.io import git_commit, write_text

if TYPE_CHECKING:
    import optuna

    from kaggle_style.train import EpochCallback, TrainConfig

MULTI_STAGE = True

# Fields that name a run or the tuning itself: sampling them would make no sense.
UNTUNABLE = frozenset({"name", "search_space", "folds", "runs_dir", "resume"})
# Fields that may differ between workers (each box has its own paths) without changing a trial.
LOCAL_KEYS = frozenset({"data", "folds_file", "crops_manifest", "cache_dir", "runs_dir",
                        "num_workers", "progress", "log_with", "name", "compile"})
SPEC_KEYS: dict[str, frozenset[str]] = {
    "float": frozenset({"type", "low", "high", "log", "step"}),
    "int": frozenset({"type", "low", "high", "log", "step"}),
    "categorical": frozenset({"type", "choices"}),
}
BASE_CONFIG_ATTR = "base_config"  # set last when a study is created: joiners wait for it
SEARCH_SPACE_ATTR = "search_space"
DEFAULTS_ATTR = "defaults"  # user attr of the trial that runs the config's own values
JOURNAL_PREFIX = "journal://"
TrainFn = Callable[["TrainConfig", "EpochCallback | None"], dict[str, Any]]


class TuneError(RuntimeError):
    """A study that cannot be run or exported as asked."""


# --------------------------------------------------------------------------------------------
# search space


@dataclass(frozen=True)
class Param:
    """One `search_space` entry: how to sample one TrainConfig field."""

    name: str
    kind: str  # float | int | categorical
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.kind == "float":
            return trial.suggest_float(self.name, self.low, self.high, log=self.log,
                                       step=self.step)
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log,
                                     step=int(self.step or 1))
        return trial.suggest_categorical(self.name, list(self.choices))

    def contains(self, value: Any) -> bool:
        if self.kind == "categorical":
            return any((value == c and type(value) is type(c)) or _same_number(value, c)
                       for c in self.choices)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        return self.low <= value <= self.high

    def unit(self, value: Any) -> float:
        """Where `value` lies in the space, 0..1 (log-scaled where sampled so)."""
        if self.kind == "categorical":
            index = next(i for i, c in enumerate(self.choices) if c == value)
            return index / max(1, len(self.choices) - 1)
        if self.high == self.low:
            return 0.0
        if self.log:
            return math.log(value / self.low) / math.log(self.high / self.low)
        return (value - self.low) / (self.high - self.low)


def _same_number(a: Any, b: Any) -> bool:
    numbers = (int, float)
    return (isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool)
            and not isinstance(b, bool) and a == b)


def parse_search_space(space: Mapping[str, Any]) -> dict[str, Param]:
    """Check every entry against TrainConfig before any trial runs, so a typo fails at once."""
    from kaggle_style.train import TrainConfig

    if not space:
        raise ConfigError("the config has no search_space: nothing to tune (see configs/"
                          "demo-crop.yaml for the format)")
    known = {f.name for f in fields(TrainConfig)}
    hints = typing.get_type_hints(TrainConfig)
    params: dict[str, Param] = {}
    for name, spec in space.items():
        where = f"search_space.{name}"
        if name not in known:
            raise ConfigError(f"{where}: not a TrainConfig field; known fields: "
                              f"{', '.join(sorted(known - UNTUNABLE))}")
        if name in UNTUNABLE:
            raise ConfigError(f"{where}: this field names the run or the study; it cannot be tuned")
        if not isinstance(spec, Mapping) or spec.get("type") not in SPEC_KEYS:
            raise ConfigError(f"{where}: expected a mapping with type: float, int or categorical, "
                              f"got {spec!r}")
        kind = spec["type"]
        extra = sorted(set(spec) - SPEC_KEYS[kind])
        if extra:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(extra)} for type {kind} "
                              f"(allowed: {', '.join(sorted(SPEC_KEYS[kind]))})")
        params[name] = _param(name, kind, spec, where)
        _check_field_type(params[name], hints[name], where)
    return params


def _param(name: str, kind: str, spec: Mapping[str, Any], where: str) -> Param:
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}: categorical needs a non-empty list of choices")
        if any(not isinstance(c, None | bool | int | float | str) for c in choices):
            raise ConfigError(f"{where}: choices must be numbers, strings, booleans or null")
        return Param(name, kind, choices=tuple(choices))
    if "low" not in spec or "high" not in spec:
        raise ConfigError(f"{where}: type {kind} needs low and high")
    low, high, log, step = spec["low"], spec["high"], spec.get("log", False), spec.get("step")
    numbers = [v for v in (low, high, step) if v is not None]
    if any(isinstance(v, bool) or not isinstance(v, int | float) for v in numbers):
        raise ConfigError(f"{where}: low, high and step must be numbers")
    if kind == "int" and any(int(v) != v for v in numbers):
        raise ConfigError(f"{where}: an int range needs whole numbers")
    if not isinstance(log, bool):
        raise ConfigError(f"{where}: log must be true or false")
    if low > high or (log and low <= 0) or (log and step is not None and kind == "float"):
        raise ConfigError(f"{where}: need low <= high, low > 0 for log, and no step with a "
                          "log float")
    return Param(name, kind, float(low), float(high), log, step)


def _check_field_type(param: Param, hint: Any, where: str) -> None:
    """Sampled values must fit the field: an int field cannot take a float range."""
    args = set(typing.get_args(hint)) or {hint}
    if param.kind == "float" and int in args and float not in args:
        raise ConfigError(f"{where}: the field is an integer; use type: int or categorical")
    values = list(param.choices) if param.kind == "categorical" else [param.low, param.high]
    if param.kind == "int":
        values = [int(v) for v in values]
    from kaggle_style.train import TrainConfig

    for value in values:
        resolve_config(TrainConfig, overrides={param.name: value})  # ConfigError if it does not fit


def default_params(cfg: TrainConfig, space: Mapping[str, Param]) -> dict[str, Any]:
    """The config's own values of the tuned keys: the study's first trial."""
    params = {name: getattr(cfg, name) for name in space}
    for name, value in params.items():
        if not space[name].contains(value):
            raise ConfigError(
                f"search_space.{name}: the config's value {value!r} lies outside the space; the "
                "first trial runs the config's own values, so widen the space or change the value"
            )
        if space[name].kind == "int":
            params[name] = int(value)
    return params


def trial_config(cfg: TrainConfig, params: Mapping[str, Any], name: str) -> TrainConfig:
    """The base config with a trial's values and its own run name (values checked as usual)."""
    from kaggle_style.train import TrainConfig

    return resolve_config(TrainConfig, overrides={**config_dict(cfg), **params, "name": name})


def trial_name(study_name: str, number: int) -> str:
    return f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', study_name)}-t{number}"


# --------------------------------------------------------------------------------------------
# storage and study


def default_storage(study_name: str) -> str:
    return f"sqlite:///studies/{re.sub(r'[^A-Za-z0-9_.-]+', '_', study_name)}.db"


def masked(url: str) -> str:
    """The storage URL fit for logs: never a password."""
    if url.startswith(JOURNAL_PREFIX):
        return url
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL may still hold a secret: show only its scheme
        return url.split(":", 1)[0] + "://***"


def open_storage(
    url: str,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    max_retry: int | None = 3,
) -> optuna.storages.BaseStorage:
    """RDB storage (sqlite/postgresql/mysql URL) or a journal file (journal://PATH).

    On an RDB storage, workers record a heartbeat; a trial whose worker died (killed, box lost)
    is marked FAILED by the next worker to start a trial and queued again with the same values.
    Optuna's journal storage has no heartbeat (as of Optuna 5), so a dead worker's trial stays
    RUNNING there.
    """
    import optuna

    if url.startswith(JOURNAL_PREFIX):
        path = Path(url[len(JOURNAL_PREFIX):])
        if not path.name:
            raise TuneError(f"{url}: a journal storage needs a file, e.g. journal:///shared/s.log")
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    parsed = make_url(url)
    engine_kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # several local workers share the file: wait for its lock rather than fail
        engine_kwargs["connect_args"] = {"timeout": 60}
    kwargs: dict[str, Any] = {}
    if heartbeat_interval:
        kwargs = {"heartbeat_interval": heartbeat_interval, "grace_period": grace_period,
                  **_retry_callback(max_retry)}

    def connect() -> optuna.storages.RDBStorage:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **kwargs)

    for attempt in range(5):
        try:
            return connect()
        except (IntegrityError, ProgrammingError):
            # Workers starting together on an empty database race to create Optuna's tables;
            # the losers find them made on the next try.
            time.sleep(0.2 + random.random() * (attempt + 1))
    return connect()


def _retry_callback(max_retry: int | None) -> dict[str, Any]:
    """The retry-on-stale-heartbeat callback under the name this Optuna version uses."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if hasattr(optuna.storages, "RetryHeartbeatStaleTrialCallback"):  # Optuna >= 4.9
            callback = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
            return {"heartbeat_stale_trial_callback": callback}
        return {"failed_trial_callback": optuna.storages.RetryFailedTrialCallback(max_retry)}


def make_pruner(
    kind: str, startup_trials: int = 5, warmup_steps: int = 0
) -> optuna.pruners.BasePruner:
    import optuna

    if kind == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup_trials,
                                           n_warmup_steps=warmup_steps)
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(1, warmup_steps + 1))
    if kind == "none":
        return optuna.pruners.NopPruner()
    raise ConfigError(f"pruner must be median, hyperband or none, not {kind!r}")


def open_study(
    storage: optuna.storages.BaseStorage,
    study_name: str,
    cfg: TrainConfig,
    space: Mapping[str, Param],
    *,
    sampler: optuna.samplers.BaseSampler | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
    wait_s: float = 120.0,
) -> optuna.Study:
    """Create the study (first trial: the config's values) or join it once its creator is done.

    Creating is atomic in the storage, so of several workers starting together exactly one
    creates; it queues the defaults trial before it marks the study ready (the base config
    user attr), and joiners wait for that mark, so trial 0 is always the defaults.
    """
    import optuna

    try:
        study = optuna.create_study(study_name=study_name, storage=storage, sampler=sampler,
                                    pruner=pruner, direction="minimize")
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=study_name, storage=storage, sampler=sampler,
                                  pruner=pruner)
        base = _wait_for_base(study, wait_s)
        _warn_if_different(base, cfg)
        return study
    study.enqueue_trial(default_params(cfg, space), user_attrs={DEFAULTS_ATTR: True})
    study.set_user_attr(SEARCH_SPACE_ATTR, cfg.search_space)
    study.set_user_attr(BASE_CONFIG_ATTR, {**config_dict(cfg), "git_commit": git_commit()})
    return study


def _wait_for_base(study: optuna.Study, wait_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + wait_s
    while True:
        base = study.user_attrs.get(BASE_CONFIG_ATTR)
        if base is not None:
            return base
        if time.monotonic() > deadline:
            raise TuneError(
                f"study {study.study_name!r} exists but has no '{BASE_CONFIG_ATTR}' user attr "
                f"after {wait_s:.0f} s: it was not made by `kaggle-style tune` (or its creator "
                "died); use another --study name"
            )
        time.sleep(0.5)


def _warn_if_different(base: Mapping[str, Any], cfg: TrainConfig) -> None:
    """A worker joining with another recipe would mix incomparable trials in one study."""
    mine = config_dict(cfg)
    differ = sorted(k for k in mine if k not in LOCAL_KEYS and k in base and base[k] != mine[k])
    if differ:
        warnings.warn(
            "this worker's config differs from the study's base config in "
            f"{', '.join(differ)}; its trials use this worker's values", stacklevel=3)


# --------------------------------------------------------------------------------------------
# several processes, one trial


def process_rank() -> tuple[int, int]:
    """(rank, world size) under `accelerate launch --multi_gpu` / torchrun; (0, 1) otherwise."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1
    import torch
    from accelerate import PartialState

    # joins the process group the launcher set up (gloo on CPU, as the trainer's Accelerator)
    state = PartialState(cpu=not torch.cuda.is_available())
    return state.process_index, state.num_processes


def share_from_main(obj: Any, world_size: int) -> Any:
    """Rank 0's `obj` on every rank: a trial's values and prune decisions must agree everywhere."""
    if world_size <= 1:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


# --------------------------------------------------------------------------------------------
# objective


def epoch_stride(cfg: TrainConfig, space: Mapping[str, Param]) -> int:
    """Steps per fold in `trial.report`: the most epochs any trial can run, so that a step means
    the same (fold, epoch) in every trial and the pruner compares like with like."""
    epochs = space.get("epochs")
    most = [cfg.epochs]
    if epochs is not None:
        most.append(int(max(epochs.choices) if epochs.kind == "categorical" else epochs.high))
    return max(most)


def synthetic_training(
    cfg: TrainConfig,
    on_epoch_end: EpochCallback | None,
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


def _caught_errors() -> tuple[type[BaseException], ...]:
    """Failures that end one trial, not the study: a diverging rate, a too-large batch."""
    import torch

    return (FloatingPointError, torch.cuda.OutOfMemoryError)


@dataclass
class Objective:
    """One trial: sample, share with the other ranks, train, report every epoch."""

    cfg: TrainConfig
    space: Mapping[str, Param]
    study_name: str
    train: TrainFn
    world_size: int = 1

    def __call__(self, trial: optuna.Trial) -> float:
        import optuna

        params = {name: p.suggest(trial) for name, p in self.space.items()}
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


def follow_main(
    cfg: TrainConfig, study_name: str, train: TrainFn, rank: int, world_size: int
) -> int:
    """Ranks > 0: train each trial rank 0 starts, with its values, until it says stop."""
    import optuna

    done = 0
    while (message := share_from_main(None, world_size)) is not None:
        number, params = message
        print(f"rank {rank} follows trial {number}", flush=True)

        def report(fold: int, epoch: int, value: float) -> None:
            if share_from_main(None, world_size):
                raise optuna.TrialPruned()

        try:
            train(trial_config(cfg, params, trial_name(study_name, number)), report)
        except (optuna.TrialPruned, *_caught_errors()):
            pass
        done += 1
    return done


def run_study(
    cfg: TrainConfig,
    study_name: str,
    storage: optuna.storages.BaseStorage,
    *,
    n_trials: int | None,
    timeout: float | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
    sampler_seed: int | None = None,
    train: TrainFn | None = None,
) -> optuna.Study | None:
    """Add up to `n_trials` trials (per worker) to the study; None on ranks > 0."""
    import optuna

    space = parse_search_space(cfg.search_space)
    default_params(cfg, space)  # fail on an out-of-space default before touching the storage
    if train is None:
        from kaggle_style.train import run_training

        train = run_training
    rank, world = process_rank()
    if rank > 0:
        follow_main(cfg, study_name, train, rank, world)
        return None
    sampler = optuna.samplers.TPESampler(seed=sampler_seed)
    study = open_study(storage, study_name, cfg, space, sampler=sampler, pruner=pruner)
    objective = Objective(cfg, space, study_name, train, world)
    try:
        study.optimize(objective, n_trials=n_trials, timeout=timeout, catch=_caught_errors(),
                       callbacks=[_print_trial], gc_after_trial=True)
    finally:
        share_from_main(None, world)  # followers stop
    return study


def _print_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    label = "last value" if trial.state.name == "PRUNED" else "value"
    value = "" if trial.value is None else f" {label} {trial.value:.6f}"
    print(f"trial {trial.number} finished: {trial.state.name}{value}", flush=True)


# --------------------------------------------------------------------------------------------
# export


def export_best(
    study_name: str, storage: optuna.storages.BaseStorage, out: str | Path,
    name: str | None = None, storage_label: str = "",
) -> Path:
    """Write the best trial as a train config: the study's base config + the best values.

    `folds` is left out so that `train --config` trains every fold (the study may have tuned on
    one); the comments say which folds the trial used, its number and value.
    """
    import optuna

    from kaggle_style.train import TrainConfig

    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError as err:
        raise TuneError(f"no study {study_name!r} in {storage_label or 'the storage'}") from err
    base = study.user_attrs.get(BASE_CONFIG_ATTR)
    if base is None:
        raise TuneError(f"study {study_name!r} has no '{BASE_CONFIG_ATTR}' user attr: not made "
                        "by `kaggle-style tune`")
    states = optuna.trial.TrialState
    complete = study.get_trials(deepcopy=False, states=(states.COMPLETE,))
    if not complete:
        raise TuneError(f"study {study_name!r} has no complete trial yet")
    best = study.best_trial
    values = {k: v for k, v in base.items() if k not in ("git_commit", "search_space", "folds")}
    values.update(best.params)
    values["name"] = name or f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', study_name)}-best"
    cfg = resolve_config(TrainConfig, overrides=values)
    exported = {k: v for k, v in config_dict(cfg).items() if k not in ("search_space", "folds")}
    defaults = [t for t in complete if t.user_attrs.get(DEFAULTS_ATTR)]
    labels = {states.COMPLETE: "complete", states.PRUNED: "pruned", states.FAIL: "failed"}
    counts = {label: len(study.get_trials(deepcopy=False, states=(state,)))
              for state, label in labels.items()}
    tuned_folds = base.get("folds")
    header = [
        f"# Best trial of Optuna study '{study_name}'"
        + (f" ({storage_label})" if storage_label else "") + ", by kaggle-style tune-export.",
        f"# best trial: {best.number}  value (OOF log loss): {best.value!r}  "
        f"folds: {tuned_folds if tuned_folds is not None else 'all'}  "
        f"run: {best.user_attrs.get('run_dir', '?')}",
        "# defaults trial: " + (f"{defaults[0].number}  value: {defaults[0].value!r}" if defaults
                                else "not complete"),
        "# trials: " + ", ".join(f"{n} {s}" for s, n in counts.items())
        + f"; tuned: {', '.join(best.params)}",
        "# `kaggle-style train --config THIS` trains every fold"
        + (f"; add --fold {' --fold '.join(map(str, tuned_folds))} to repeat the trial"
           if tuned_folds is not None else ""),
    ]
    text = "\n".join(header) + "\n" + yaml.safe_dump(exported, sort_keys=False)
    return write_text(out, text)


# --------------------------------------------------------------------------------------------
# command line


def add_arguments(parser: argparse.ArgumentParser, stage: str = "tune") -> None:
    parser.add_argument("--study", required=True, help="study name (shared by every worker)")
    parser.add_argument(
        "--storage",
        help="sqlite:///FILE.db (default sqlite:///studies/STUDY.db), postgresql+psycopg2://"
             "USER:PASS@HOST/DB or mysql+pymysql://... for several boxes, or journal:///PATH.log "
             "for boxes that share a filesystem but no database",
    )
    if stage == "tune-export":
        parser.add_argument("--out", type=Path, required=True, help="config file to write")
        parser.add_argument("--name", help="run name in the config (default STUDY-best)")
        return
    add_config_arguments(parser)
    parser.add_argument("--n-trials", type=int, default=10,
                        help="trials this worker adds (each worker counts its own)")
    parser.add_argument("--timeout", type=float, help="stop starting trials after S seconds")
    parser.add_argument("--pruner", choices=["median", "hyperband", "none"], default="median")
    parser.add_argument("--pruner-startup-trials", type=int, default=5,
                        help="median pruner: complete trials before any pruning")
    parser.add_argument("--pruner-warmup-steps", type=int, default=0,
                        help="epochs of a trial before it may be pruned")
    parser.add_argument("--sampler-seed", type=int, help="TPE seed (give each worker its own)")
    parser.add_argument("--heartbeat-interval", type=int, default=60,
                        help="seconds between a worker's heartbeats (RDB storages; 0: off)")
    parser.add_argument("--grace-period", type=int,
                        help="seconds without a heartbeat before a trial is failed "
                             "(default twice the interval)")
    parser.add_argument("--max-retry", type=int, default=3,
                        help="times a trial whose worker died is queued again")
    parser.add_argument("--objective", choices=["train", "synthetic"], default="train",
                        help="synthetic: no training, a cheap deterministic loss of the values "
                             "(to try storages and workers)")
    parser.add_argument("--synthetic-seconds", type=float, default=0.0,
                        help="synthetic objective: seconds per epoch")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace, stage: str = "tune") -> int:
    url = args.storage or default_storage(args.study)
    try:
        if stage == "tune-export":
            _export(args, url)
        else:
            _tune(args, url)
    except (ValueError, TuneError) as err:  # config, search space, storage, study
        print(f"{stage}: error: {err}", file=sys.stderr)
        return 2
    return 0


def _export(args: argparse.Namespace, url: str) -> None:
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).is_file():
        raise TuneError(f"no study file {url[len('sqlite:///'):]} (give --storage)")
    storage = open_storage(url)
    out = export_best(args.study, storage, args.out, args.name, storage_label=masked(url))
    print(f"wrote {out}")


def _tune(args: argparse.Namespace, url: str) -> None:
    from kaggle_style.train import TrainConfig

    cfg = resolve_config(TrainConfig, args.config, args.overrides,
                         progress=False if args.quiet else None)
    space = parse_search_space(cfg.search_space)
    if url.startswith(JOURNAL_PREFIX):
        print("note: a journal storage has no heartbeat (Optuna 5): a trial whose worker dies "
              "stays RUNNING and is not retried; use an RDB storage for that", file=sys.stderr)
    storage = open_storage(url, args.heartbeat_interval or None, args.grace_period, args.max_retry)
    pruner = make_pruner(args.pruner, args.pruner_startup_trials, args.pruner_warmup_steps)
    train = None
    if args.objective == "synthetic":
        train = partial(synthetic_training, space=space, seconds=args.synthetic_seconds)
    study = run_study(cfg, args.study, storage, n_trials=args.n_trials, timeout=args.timeout,
                      pruner=pruner, sampler_seed=args.sampler_seed, train=train)
    if study is not None:
        _print_summary(study, url)


def _print_summary(study: optuna.Study, url: str) -> None:
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    print(f"study {study.study_name!r} on {masked(url)}: {len(study.trials)} trials, "
          f"{len(complete)} complete")
    if complete:
        best = study.best_trial
        print(f"best: trial {best.number} value {best.value:.6f} {best.params}")
    target = url[len(JOURNAL_PREFIX):] if url.startswith(JOURNAL_PREFIX) else masked(url)
    print(f"browse it: optuna-dashboard {target}")
