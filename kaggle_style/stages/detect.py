"""`kaggle-style detect`: run an animal detector once over every image -> MegaDetector JSON."""

from __future__ import annotations

import argparse
from pathlib import Path

from kaggle_style.config import add_config_arguments, resolve_config
from kaggle_style.detect.batch import DETECTORS, DetectConfig, default_weights, detect_images


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", type=Path, help="DrivenData folder (train + test images)")
    source.add_argument("--images", type=Path, help="any folder of images (recursive)")
    parser.add_argument("--detector", choices=DETECTORS, help="backend (megadetector-lite)")
    lite = default_weights("megadetector-lite")
    parser.add_argument(
        "--weights",
        type=Path,
        help=f"weights file (megadetector-lite default: {lite or 'none found'})",
    )
    parser.add_argument(
        "--out", type=Path, help="output JSON, outside the data folder (detections/detections.json)"
    )
    parser.add_argument("--batch-size", type=int, help="images per forward pass (16; 64 on a GPU)")
    parser.add_argument("--device", help="auto | cpu | cuda | cuda:N (auto)")
    parser.add_argument("--num-workers", type=int, help="image-decoding processes (2)")
    parser.add_argument("--checkpoint-every", type=int, help="images between checkpoints (500)")
    parser.add_argument("--limit", type=int, help="stop after N new images (resume later)")
    parser.add_argument("--force", action="store_true", default=None, help="recompute")
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    cfg = resolve_config(
        DetectConfig,
        args.config,
        args.overrides,
        data=args.data,
        images=args.images,
        detector=args.detector,
        weights=args.weights,
        out=args.out,
        batch_size=args.batch_size,
        device=args.device,
        num_workers=args.num_workers,
        checkpoint_every=args.checkpoint_every,
        limit=args.limit,
        force=args.force,
    )
    detect_images(cfg)
    return 0
