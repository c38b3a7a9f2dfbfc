"""`kaggle-style detect`: run an animal detector once over every image -> MegaDetector JSON."""

from __future__ import annotations

import argparse

from kaggle_style.config_flags import add_config_arguments, add_config_flags, config_from_args
from kaggle_style.detect.batch import DetectConfig, detect_images
from kaggle_style.stages import Command


def arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    add_config_flags(parser, DetectConfig, exclusive=[("data", "images")])


def run(args: argparse.Namespace) -> int:
    detect_images(config_from_args(DetectConfig, args))
    return 0


COMMANDS = {"detect": Command(arguments, run)}
