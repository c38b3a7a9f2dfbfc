"""`kaggle-style predict`: class probabilities for any folder of images (a new deployment)."""

from __future__ import annotations

import argparse
from pathlib import Path

from kaggle_style.deployment import DetectorChoice, run_predict
from kaggle_style.io import check_outputs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", type=Path, required=True, help="folder of images (recursive)")
    parser.add_argument("--run", type=Path, required=True, help="model run or ensemble run folder")
    parser.add_argument("--site-from-folder", action="store_true",
                        help="the top-level sub-folder of each image is its camera site")
    parser.add_argument("--out", type=Path, default=Path("predictions.csv"))
    parser.add_argument("--detector", default="megadetector-lite",
                        choices=("megadetector-lite", "megadetector"))
    parser.add_argument("--weights", type=Path, help="detector weights (crop-trained runs)")
    parser.add_argument("--no-detector", action="store_true",
                        help="full frames even for crop-trained runs (with a warning)")
    parser.add_argument("--work", type=Path, help="work folder (detections, crops, cache)")
    parser.add_argument("--no-meta", action="store_true",
                        help="skip reading the info bars (times, night flag, sequences)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    check_outputs({"--out": args.out, "--work": args.work},
                  {"--images": args.images, "--run": args.run})
    run_predict(args.images, args.run, args.out, args.site_from_folder,
                DetectorChoice(args.detector, args.weights, not args.no_detector),
                args.work, progress=not args.quiet, read_meta=not args.no_meta)
    return 0
