"""`kaggle-style meta`: every train and test frame's info bar read into meta.csv."""

from __future__ import annotations

import argparse

from kaggle_style.config import add_config_arguments, resolve_config
from kaggle_style.meta.run import MetaConfig, build_meta
from kaggle_style.task import task_option_help


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--data", help="DrivenData folder (train_features.csv, test_features.csv)")
    parser.add_argument("--out", help="CSV to write (default meta.csv)")
    parser.add_argument(
        "--gap-seconds",
        type=float,
        help="frames of a site within this many seconds form one sequence (60)",
    )
    parser.add_argument("--workers", type=int, help="processes (default: one per CPU core)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument("--task", help=task_option_help())


def run(args: argparse.Namespace) -> int:
    cfg = resolve_config(
        MetaConfig,
        args.config,
        args.overrides,
        data=args.data,
        out=args.out,
        gap_seconds=args.gap_seconds,
        workers=args.workers,
        progress=False if args.quiet else None,
        task=args.task,
    )
    build_meta(cfg)
    return 0
