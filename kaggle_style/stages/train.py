"""`kaggle-style train`: a config in, every fold's OOF and test predictions out."""

from __future__ import annotations

import argparse

from kaggle_style.config_flags import add_config_arguments, add_config_flags, config_from_args
from kaggle_style.stages import Command
from kaggle_style.training.config import TrainConfig

QUIET = "no progress bars (CI logs); the same as --no-progress"


def arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    add_config_flags(
        parser,
        TrainConfig,
        aliases={"folds": "--fold"},
        switches={"--quiet": ("progress", False, QUIET)},
    )


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(TrainConfig, args)
    from kaggle_style.training.run import run_training

    run_training(cfg)
    return 0


COMMANDS = {"train": Command(arguments, run)}
