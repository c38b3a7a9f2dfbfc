"""`kaggle-style show-detections`: draw boxes and confidences on images into PNGs."""

from __future__ import annotations

import argparse
from pathlib import Path

from kaggle_style.detect.show import show_detections
from kaggle_style.stages import Command


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--detections", type=Path, required=True, help="MegaDetector JSON")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", type=Path, help="folder of images (keys = relative paths)")
    source.add_argument("--data", type=Path, help="DrivenData folder (keys = filepath)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the PNGs")
    parser.add_argument("--min-conf", type=float, default=0.1, help="hide weaker boxes (0.1)")
    parser.add_argument("--limit", type=int, help="at most N images")


def run(args: argparse.Namespace) -> int:
    show_detections(args.detections, args.out, args.data, args.images, args.min_conf, args.limit)
    return 0


COMMANDS = {"show-detections": Command(arguments, run)}
