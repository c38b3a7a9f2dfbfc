"""`kaggle-style meta`: every train and test frame's info bar read into meta.csv."""

from __future__ import annotations

import argparse

from kaggle_style.config_flags import add_config_arguments, add_config_flags, config_from_args
from kaggle_style.meta.run import MetaConfig, build_meta
from kaggle_style.stages import Command

QUIET = "no progress lines; the same as --no-progress"


def arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    add_config_flags(parser, MetaConfig, switches={"--quiet": ("progress", False, QUIET)})


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(MetaConfig, args)
    build_meta(cfg)
    return 0


COMMANDS = {"meta": Command(arguments, run)}
