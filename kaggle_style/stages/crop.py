"""`kaggle-style crop`: cache animal crops at several detection thresholds + a manifest."""

from __future__ import annotations

import argparse

from kaggle_style.config_flags import add_config_arguments, add_config_flags, config_from_args
from kaggle_style.detect.crops import CropConfig, run_crops
from kaggle_style.stages import Command


def arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    add_config_flags(parser, CropConfig, exclusive=[("data", "images")])


def run(args: argparse.Namespace) -> int:
    run_crops(config_from_args(CropConfig, args))
    return 0


COMMANDS = {"crop": Command(arguments, run)}
