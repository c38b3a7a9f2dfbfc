"""`kaggle-style slurm-train` / `slurm-tune`: the folds of several recipes, or N tuning workers,
as Slurm jobs through submitit (`make train LAUNCHER=slurm`, `make tune LAUNCHER=slurm`)."""

from __future__ import annotations

import argparse

from kaggle_style.config import parse_overrides, resolve_config
from kaggle_style.config_flags import add_config_arguments, add_config_flags, flag_values
from kaggle_style.errors import UserError
from kaggle_style.launch.settings import SlurmSettings
from kaggle_style.stages import Command
from kaggle_style.training.config import TrainConfig
from kaggle_style.tuning.config import TuneConfig

SLURM_ALIASES = {"time_min": "--time", "mem_gb": "--mem"}
TRAIN_KEYS = ("data", "folds_file", "runs_dir")  # the keys every recipe of one call shares
RECIPE_HELP = (
    "a recipe (configs/X.yaml) whose folds to submit; repeatable; the run is named after the file"
)
TUNE_KEYS = ("study", "storage", "config", "overrides", "n_trials")


def train_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(
        parser,
        dests=("recipes", "overrides"),
        helps=(RECIPE_HELP, "override keys of every recipe"),
        action="append",
        required=True,
    )
    add_config_flags(parser, TrainConfig, only=TRAIN_KEYS)
    _slurm_arguments(parser)


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


def tune_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_flags(
        parser, TuneConfig, only=TUNE_KEYS, aliases={"overrides": "--set"}, required=True
    )
    parser.add_argument("--workers", type=int, default=2, help="worker jobs to start (default 2)")
    _slurm_arguments(parser)


def run_tune(args: argparse.Namespace) -> int:
    from kaggle_style.launch.slurm import submit_tuning

    given = flag_values(args, TuneConfig)
    if given.get("storage") is None:
        raise UserError(
            "--storage is required: a storage every node reaches "
            "(postgresql+psycopg2://…, journal:///shared/path.log, or sqlite on a shared disk)"
        )
    workers = [
        resolve_config(TuneConfig, cli={**given, "sampler_seed": i, "quiet": True})
        for i in range(args.workers)
    ]
    submit_tuning(workers, _settings(args), wait=args.wait)
    return 0


def _slurm_arguments(parser: argparse.ArgumentParser) -> None:
    """SlurmSettings' layers (`--slurm-config`, `--slurm KEY=VALUE`) and a flag per key."""
    add_config_arguments(
        parser,
        ("--slurm-config", "--slurm"),
        ("slurm_config", "slurm"),
        ("YAML of SlurmSettings keys", "override SlurmSettings keys, e.g. --slurm qos=high"),
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
    "slurm-train": Command(train_arguments, run_train),
    "slurm-tune": Command(tune_arguments, run_tune),
}
