"""`kaggle-style predict`: class probabilities for any folder of images (a new deployment), as
a CSV, a Camtrap DP package, a MegaDetector results file or record tables."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Literal

from kaggle_style.config import resolve_config, stage_config
from kaggle_style.config_flags import add_config_flags, add_task_option, flag_values
from kaggle_style.deployment import DetectorChoice
from kaggle_style.export import OutputConfig, OutputOptions, predict_to
from kaggle_style.files import check_outputs
from kaggle_style.stages import Command
from kaggle_style.task import DEFAULT_FOLDS, load_task


@stage_config
class PredictConfig:
    """How `predict` reads a new deployment: sites, the detector for crop-trained runs, clocks."""

    site_from_folder: bool = False
    """the top-level sub-folder of each image is its camera site"""
    detector: Literal["megadetector-lite", "megadetector"] = "megadetector-lite"
    """the detector that crops images for crop-trained runs (and boxes md, camtrap-dp)"""
    weights: Path | None = None
    """detector weights file (null: the detector's default)"""
    use_detector: bool = True
    """false (also --no-detector): full frames even for crop-trained runs (with a warning)"""
    read_meta: bool = True
    """false (also --no-meta): skip reading the clocks (info bars, EXIF): no times or sequences"""
    progress: bool = True
    """progress bars (--quiet: none)"""


SWITCHES = {
    "--no-detector": ("use_detector", False, "full frames, no boxes (use_detector: false)"),
    "--no-meta": ("read_meta", False, "no times or sequences (read_meta: false)"),
    "--quiet": ("progress", False, "no progress bars (progress: false)"),
}


def output_arguments(parser: argparse.ArgumentParser) -> None:
    """The format and the user's thresholds (shared with `export`)."""
    add_config_flags(parser, OutputConfig)


def output_options(args: argparse.Namespace) -> OutputOptions:
    return resolve_config(OutputConfig, cli=flag_values(args, OutputConfig)).options()


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", type=Path, required=True, help="folder of images (recursive)")
    parser.add_argument("--run", type=Path, required=True, help="model run or ensemble run folder")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("predictions.csv"),
        help="a file (csv, md) or a folder (camtrap-dp, records)",
    )
    parser.add_argument("--work", type=Path, help="work folder (detections, crops, cache)")
    add_config_flags(parser, PredictConfig, switches=SWITCHES)
    output_arguments(parser)
    add_task_option(parser)


def run(args: argparse.Namespace) -> int:
    check_outputs(
        {"--out": args.out, "--work": args.work}, {"--images": args.images, "--run": args.run}
    )
    cfg = resolve_config(PredictConfig, cli=flag_values(args, PredictConfig))
    options = output_options(args)  # a bad metadata file fails before any image is read
    predict_to(
        args.images,
        args.run,
        args.out,
        options,
        cfg.site_from_folder,
        DetectorChoice(cfg.detector, cfg.weights, cfg.use_detector),
        args.work,
        progress=cfg.progress,
        read_meta=cfg.read_meta,
        task=load_task(args.task, folds=DEFAULT_FOLDS),
    )
    return 0


COMMANDS = {"predict": Command(arguments, run)}
