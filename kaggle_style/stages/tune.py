"""`kaggle-style tune` (one worker of a shared Optuna study) and `tune-export` (best -> config)."""

from __future__ import annotations

import argparse
from pathlib import Path

from kaggle_style.config import add_config_arguments

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
    from kaggle_style.tuning.config import ExportConfig, TuneConfig
    from kaggle_style.tuning.run import export, tune

    if stage == "tune-export":
        out = export(ExportConfig(study=args.study, out=args.out, storage=args.storage,
                                  name=args.name))
        print(f"wrote {out}")
        return 0
    tune(TuneConfig(
        study=args.study, storage=args.storage, config=args.config, overrides=args.overrides,
        n_trials=args.n_trials, timeout=args.timeout, pruner=args.pruner,
        pruner_startup_trials=args.pruner_startup_trials,
        pruner_warmup_steps=args.pruner_warmup_steps, sampler_seed=args.sampler_seed,
        heartbeat_interval=args.heartbeat_interval, grace_period=args.grace_period,
        max_retry=args.max_retry, objective=args.objective,
        synthetic_seconds=args.synthetic_seconds, quiet=args.quiet,
    ))
    return 0
