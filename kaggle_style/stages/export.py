"""`kaggle-style export`: a run's competition test predictions (a model run or an ensemble) as
a Camtrap DP package, a MegaDetector results file, record tables or a CSV."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kaggle_style.config_flags import add_task_option
from kaggle_style.export import export_run
from kaggle_style.stages import Command
from kaggle_style.stages.predict import output_arguments, output_options
from kaggle_style.task import DEFAULT_FOLDS, load_task


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--run", type=Path, required=True, help="model run or ensemble run folder (its test.csv)"
    )
    parser.add_argument(
        "--data",
        type=Path,
        required=True,
        help="the DrivenData folder (test_features.csv: files and sites)",
    )
    parser.add_argument("--meta", type=Path, help="meta.csv (clocks and sequences)")
    parser.add_argument(
        "--detections", type=Path, help="the detect stage's MegaDetector file (boxes)"
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="a file (csv, md) or a folder (camtrap-dp, records)"
    )
    output_arguments(parser)
    add_task_option(parser)


def run(args: argparse.Namespace) -> int:
    options = output_options(args)
    task = load_task(args.task, folds=DEFAULT_FOLDS)
    done = export_run(args.run, args.data, args.out, options, args.meta, args.detections, task)
    print(f"export: {done}", file=sys.stderr)
    return 0


COMMANDS = {"export": Command(arguments, run)}
