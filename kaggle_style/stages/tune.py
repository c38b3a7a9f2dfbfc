"""`kaggle-style tune` (one worker of a shared Optuna study) and `tune-export` (best -> config)."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from pathlib import Path

from kaggle_style.config import add_config_arguments, cli_values, resolve_config
from kaggle_style.tuning.config import ExportConfig, ObjectiveKind, Pruner, TuneConfig

MULTI_STAGE = True


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
    # No defaults here: TuneConfig holds them, and `resolve_config` fills what is not given.
    d = {f.name: f.default for f in dataclasses.fields(TuneConfig)}
    parser.add_argument(
        "--n-trials",
        type=int,
        help=f"trials this worker adds (each worker counts its own; {d['n_trials']})",
    )
    parser.add_argument("--timeout", type=float, help="stop starting trials after S seconds")
    parser.add_argument("--pruner", choices=typing.get_args(Pruner), help=f"default {d['pruner']}")
    parser.add_argument(
        "--pruner-startup-trials",
        type=int,
        help=f"median pruner: complete trials before any pruning ({d['pruner_startup_trials']})",
    )
    parser.add_argument(
        "--pruner-warmup-steps",
        type=int,
        help=f"epochs of a trial before it may be pruned ({d['pruner_warmup_steps']})",
    )
    parser.add_argument("--sampler-seed", type=int, help="TPE seed (give each worker its own)")
    parser.add_argument(
        "--heartbeat-interval",
        type=int,
        help=f"seconds between a worker's heartbeats (RDB storages; 0: off; "
        f"{d['heartbeat_interval']})",
    )
    parser.add_argument(
        "--grace-period",
        type=int,
        help="seconds without a heartbeat before a trial is failed (default twice the interval)",
    )
    parser.add_argument(
        "--max-retry",
        type=int,
        help=f"times a trial whose worker died is queued again ({d['max_retry']})",
    )
    parser.add_argument(
        "--objective",
        choices=typing.get_args(ObjectiveKind),
        help="synthetic: no training, a cheap deterministic loss of the values "
        f"(to try storages and workers; default {d['objective']})",
    )
    parser.add_argument(
        "--synthetic-seconds", type=float, help="synthetic objective: seconds per epoch"
    )
    parser.add_argument("--quiet", action="store_true", default=None, help="no progress bars")


def run(args: argparse.Namespace, stage: str = "tune") -> int:
    from kaggle_style.tuning.run import export, tune

    if stage == "tune-export":
        out = export(resolve_config(ExportConfig, cli=cli_values(args, ExportConfig)))
        print(f"wrote {out}")
        return 0
    tune(resolve_config(TuneConfig, cli=cli_values(args, TuneConfig)))
    return 0
