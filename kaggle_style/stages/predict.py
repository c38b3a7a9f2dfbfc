"""`kaggle-style predict`: class probabilities for any folder of images (a new deployment), as
a CSV, a Camtrap DP package, a MegaDetector results file or record tables."""

from __future__ import annotations

import argparse
from pathlib import Path

from kaggle_style.deployment import DetectorChoice
from kaggle_style.export import FORMATS, OutputOptions, predict_to
from kaggle_style.files import check_outputs
from kaggle_style.outputs.records import DEFAULT_MINUTES
from kaggle_style.task import DEFAULT_FOLDS, load_task, task_option_help


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """The format and the user's thresholds (shared with `export`)."""
    parser.add_argument(
        "--format",
        default="csv",
        choices=FORMATS,
        help="csv (one row per image), camtrap-dp (a package folder), md "
        "(MegaDetector JSON with classifications), records (folder)",
    )
    parser.add_argument(
        "--top-k", type=int, default=1, help="at most this many classes per image (default 1)"
    )
    parser.add_argument(
        "--min-prob",
        type=float,
        default=0.0,
        help="keep a class only from this probability (default 0: no cut)",
    )
    parser.add_argument(
        "--min-box-conf",
        type=float,
        default=0.1,
        help="detector boxes from this confidence carry classes (default 0.1)",
    )
    parser.add_argument(
        "--metadata", type=Path, help="camtrap-dp: YAML with project, contributors, timezone, sites"
    )
    parser.add_argument(
        "--independence-minutes",
        type=float,
        default=DEFAULT_MINUTES,
        help="records: minutes between independent events (default 30)",
    )
    parser.add_argument(
        "--independence-from",
        default="last_independent",
        choices=("last_independent", "last"),
        help="records: measured from the last independent record (camtrapR's "
        "lastIndependentRecord) or the last record",
    )


def output_options(args: argparse.Namespace) -> OutputOptions:
    return OutputOptions.checked(
        args.format,
        args.top_k,
        args.min_prob,
        args.min_box_conf,
        args.metadata,
        args.independence_minutes,
        args.independence_from,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", type=Path, required=True, help="folder of images (recursive)")
    parser.add_argument("--run", type=Path, required=True, help="model run or ensemble run folder")
    parser.add_argument(
        "--site-from-folder",
        action="store_true",
        help="the top-level sub-folder of each image is its camera site",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("predictions.csv"),
        help="a file (csv, md) or a folder (camtrap-dp, records)",
    )
    parser.add_argument(
        "--detector", default="megadetector-lite", choices=("megadetector-lite", "megadetector")
    )
    parser.add_argument("--weights", type=Path, help="detector weights (crops and boxes)")
    parser.add_argument(
        "--no-detector",
        action="store_true",
        help="full frames even for crop-trained runs (with a warning); no boxes",
    )
    parser.add_argument("--work", type=Path, help="work folder (detections, crops, cache)")
    parser.add_argument(
        "--no-meta",
        action="store_true",
        help="skip reading the clocks (info bars, EXIF): no times or sequences",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--task", help=task_option_help())
    add_output_arguments(parser)


def run(args: argparse.Namespace) -> int:
    check_outputs(
        {"--out": args.out, "--work": args.work}, {"--images": args.images, "--run": args.run}
    )
    options = output_options(args)  # a bad metadata file fails before any image is read
    predict_to(
        args.images,
        args.run,
        args.out,
        options,
        args.site_from_folder,
        DetectorChoice(args.detector, args.weights, not args.no_detector),
        args.work,
        progress=not args.quiet,
        read_meta=not args.no_meta,
        task=load_task(args.task, folds=DEFAULT_FOLDS),
    )
    return 0
