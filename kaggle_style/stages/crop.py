"""`kaggle-style crop`: cache animal crops at several detection thresholds + a manifest."""

from __future__ import annotations

import argparse
from pathlib import Path

from kaggle_style.config import add_config_arguments, resolve_config
from kaggle_style.detect.crops import CropConfig, run_crops


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--detections", type=Path, help="MegaDetector JSON (any producer)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", type=Path, help="DrivenData folder (ids = DrivenData ids)")
    source.add_argument("--images", type=Path, help="folder of images (ids = relative paths)")
    parser.add_argument(
        "--thresholds", type=float, nargs="+", help="confidence thresholds (0.05 0.1 0.2 0.35 0.5)"
    )
    parser.add_argument("--pad", type=float, help="padding per side, fraction of the box (0.1)")
    parser.add_argument("--mode", choices=("best", "all"), help="best box or every box (best)")
    parser.add_argument("--min-size", type=int, help="smallest crop side in pixels (32)")
    parser.add_argument("--num-workers", type=int, help="cropping processes (2)")
    parser.add_argument("--out", type=Path, help="crop cache folder (crops)")
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    cfg = resolve_config(
        CropConfig,
        args.config,
        args.overrides,
        detections=args.detections,
        data=args.data,
        images=args.images,
        thresholds=args.thresholds,
        pad=args.pad,
        mode=args.mode,
        min_size=args.min_size,
        num_workers=args.num_workers,
        out=args.out,
    )
    run_crops(cfg)
    return 0
