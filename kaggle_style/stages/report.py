"""`kaggle-style report`: one HTML page of runs, an ensemble, sites, activity by hour."""

from __future__ import annotations

import argparse
from pathlib import Path

from kaggle_style.config import Whole, resolve_config, stage_config
from kaggle_style.config_flags import add_config_flags, add_task_option, flag_values
from kaggle_style.report.page import build_report
from kaggle_style.stages import Command
from kaggle_style.task import DEFAULT_FOLDS, load_task


@stage_config
class ReportConfig:
    """What the report shows beyond its inputs."""

    gallery: Whole = 12
    """confidently wrong images shown (0: no gallery)"""


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (model runs, ensembles)")
    parser.add_argument("--data", type=Path, required=True, help="DrivenData folder (sites)")
    parser.add_argument("--out", type=Path, required=True, help="report folder, e.g. reports/x")
    parser.add_argument("--crops", type=Path, help="crops manifest for the gallery thumbnails")
    parser.add_argument(
        "--meta",
        type=Path,
        help="meta.csv (kaggle-style meta): activity by hour, sequences per site",
    )
    add_config_flags(parser, ReportConfig)
    add_task_option(parser)


def run(args: argparse.Namespace) -> int:
    gallery = resolve_config(ReportConfig, cli=flag_values(args, ReportConfig)).gallery
    task = load_task(args.task, folds=DEFAULT_FOLDS)
    page = build_report(args.runs, args.data, args.out, args.crops, gallery, args.meta, task=task)
    print(f"wrote {page}")
    return 0


COMMANDS = {"report": Command(arguments, run)}
