"""`kaggle-style show-detections`: draw boxes and confidences on images into PNGs."""

from __future__ import annotations

import argparse
from pathlib import Path

from kaggle_style.config import Count, Fraction, resolve_config, stage_config
from kaggle_style.config_flags import add_config_flags, flag_values
from kaggle_style.detect.show import show_detections
from kaggle_style.stages import Command


@stage_config
class ShowConfig:
    """Which boxes and how many images `show-detections` draws."""

    min_conf: Fraction = 0.1
    """hide boxes below this confidence"""
    limit: Count | None = None
    """draw at most this many images (null: all)"""


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--detections", type=Path, required=True, help="MegaDetector JSON")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", type=Path, help="folder of images (keys = relative paths)")
    source.add_argument("--data", type=Path, help="DrivenData folder (keys = filepath)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the PNGs")
    add_config_flags(parser, ShowConfig)


def run(args: argparse.Namespace) -> int:
    cfg = resolve_config(ShowConfig, cli=flag_values(args, ShowConfig))
    show_detections(args.detections, args.out, args.data, args.images, cfg.min_conf, cfg.limit)
    return 0


COMMANDS = {"show-detections": Command(arguments, run)}
