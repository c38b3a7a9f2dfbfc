"""`kaggle-style summary`: the closing lines of `make demo` (scores, second-stage steps)."""

from __future__ import annotations

import argparse
from pathlib import Path

from kaggle_style.report.summary import summarise
from kaggle_style.stages import Command


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, help="the ensemble's run folder")
    parser.add_argument("submission", type=Path, help="the validated submission CSV")


def run(args: argparse.Namespace) -> int:
    print(summarise(args.run_dir, args.submission))
    return 0


COMMANDS = {"summary": Command(arguments, run)}
