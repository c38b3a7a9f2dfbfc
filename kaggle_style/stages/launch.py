"""`kaggle-style slurm-train` / `slurm-tune`: the folds of several recipes, or N tuning workers,
as Slurm jobs through submitit (`make train LAUNCHER=slurm`, `make tune LAUNCHER=slurm`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from kaggle_style.config import parse_overrides, resolve_config
from kaggle_style.config_flags import add_config_flags, flag_values
from kaggle_style.errors import UserError
from kaggle_style.launch.settings import SlurmSettings
from kaggle_style.stages import Command
from kaggle_style.training.config import TrainConfig
from kaggle_style.tuning.config import TuneConfig

SLURM_ALIASES = {"time_min": "--time", "mem_gb": "--mem"}
TRAIN_KEYS = ("data", "folds_file", "runs_dir")  # the keys every recipe of one call shares
TUNE_KEYS = ("study", "storage", "config", "overrides", "n_trials")


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        action="append",
        required=True,
        dest="recipes",
        help="a recipe (configs/X.yaml) whose folds to "
        "submit; repeatable; the run is named after the file",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="override keys of every recipe",
    )
    add_config_flags(parser, TrainConfig, only=TRAIN_KEYS)
    _add_slurm_arguments(parser)


def run_train(args: argparse.Namespace) -> int:
    from kaggle_style.launch.slurm import submit_training

    shared = flag_values(args, TrainConfig)
    cfgs = [
        resolve_config(
            TrainConfig,
            recipe,
            args.overrides,
            cli={**shared, "name": recipe.stem, "progress": False},
        )
        for recipe in args.recipes
    ]
    submit_training(cfgs, _settings(args), wait=args.wait)
    return 0


def add_tune_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_flags(
        parser, TuneConfig, only=TUNE_KEYS, aliases={"overrides": "--set"}, required=True
    )
    parser.add_argument("--workers", type=int, default=2, help="worker jobs to start (default 2)")
    _add_slurm_arguments(parser)


def run_tune(args: argparse.Namespace) -> int:
    from kaggle_style.launch.slurm import submit_tuning

    given = flag_values(args, TuneConfig)
    if given.get("storage") is None:
        raise UserError(
            "slurm-tune: --storage is required: a storage every node reaches "
            "(postgresql+psycopg2://…, journal:///shared/path.log, or sqlite on a shared disk)"
        )
    workers = [
        resolve_config(TuneConfig, cli={**given, "sampler_seed": i, "quiet": True})
        for i in range(args.workers)
    ]
    submit_tuning(workers, _settings(args), wait=args.wait)
    return 0


def _add_slurm_arguments(parser: argparse.ArgumentParser) -> None:
    """SlurmSettings' layers (`--slurm-config`, `--slurm KEY=VALUE`) and a flag per key."""
    parser.add_argument("--slurm-config", type=Path, help="YAML of SlurmSettings keys")
    parser.add_argument(
        "--slurm",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="override SlurmSettings keys, e.g. --slurm qos=high",
    )
    add_config_flags(parser, SlurmSettings, aliases=SLURM_ALIASES)
    parser.add_argument("--wait", action="store_true", help="return when the jobs are done")


def _settings(args: argparse.Namespace) -> SlurmSettings:
    return resolve_config(
        SlurmSettings,
        args.slurm_config,
        parse_overrides(args.slurm) if args.slurm else (),
        cli=flag_values(args, SlurmSettings),
    )


COMMANDS = {
    "slurm-train": Command(add_train_arguments, run_train),
    "slurm-tune": Command(add_tune_arguments, run_tune),
}
