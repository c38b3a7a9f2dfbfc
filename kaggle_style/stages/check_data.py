"""`kaggle-style check-data DATA`: is this a usable DrivenData folder? Tables, ids, sites, images.

Prints one line per file or folder; a wrong layout ends with the one-line error and exit 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from kaggle_style.config_flags import add_task_option
from kaggle_style.data.layout import check_layout
from kaggle_style.stages import Command
from kaggle_style.task import DEFAULT_FOLDS, load_task


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", type=Path, help="the DrivenData folder (train_features.csv, ...)")
    parser.add_argument(
        "--csv-only", action="store_true", help="check the four tables only, not the image folders"
    )
    parser.add_argument(
        "--allow-outside-data",
        action="store_true",
        help="accept filepaths outside the folder (absolute or ../)",
    )

    add_task_option(parser)


def run(args: argparse.Namespace) -> int:
    report = check_layout(
        args.data,
        check_images=not args.csv_only,
        allow_outside_data=args.allow_outside_data,
        task=load_task(args.task, folds=DEFAULT_FOLDS),
    )
    print(report.format(), flush=True)
    if report.problems:
        raise report.error()
    return 0


COMMANDS = {"check-data": Command(arguments, run)}
