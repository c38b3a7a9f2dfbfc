"""`kaggle-style submit | validate | score`: write, check and score submission files.

`validate` lists every problem of a file on stdout, then ends like any user error: one line on
stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kaggle_style.ensemble.inputs import check_ensemble_folder
from kaggle_style.run_contract import check_run_task
from kaggle_style.submission import (
    DEFAULT_CLIP,
    SubmissionError,
    check_submission,
    format_scores,
    make_submission,
    score_predictions,
)
from kaggle_style.task import DEFAULT_FOLDS, load_task, task_option_help

MULTI_STAGE = True


def add_arguments(parser: argparse.ArgumentParser, stage: str) -> None:
    if stage == "submit":
        parser.add_argument(
            "--predictions",
            required=True,
            type=Path,
            help="a prediction file, e.g. runs/<name>/test.csv",
        )
        parser.add_argument(
            "--format",
            required=True,
            type=Path,
            dest="format_path",
            help="the competition's submission format file",
        )
        parser.add_argument(
            "--out",
            required=True,
            type=Path,
            help="submission file to write, e.g. submissions/<name>.csv",
        )
        parser.add_argument(
            "--clip",
            type=float,
            default=DEFAULT_CLIP,
            help="lower bound for each probability, 0 <= clip < 1/number of classes "
            f"(default {DEFAULT_CLIP:g})",
        )
    elif stage == "validate":
        parser.add_argument("submission", type=Path, help="the submission CSV to check")
        parser.add_argument(
            "--format",
            required=True,
            type=Path,
            dest="format_path",
            help="the competition's submission format file",
        )
        parser.add_argument(
            "--strict-order", action="store_true", help="also require the format file's row order"
        )
    elif stage == "score":
        parser.add_argument("predictions", type=Path, help="an OOF or submission-shaped file")
        parser.add_argument("--labels", required=True, type=Path, help="train_labels.csv")
        parser.add_argument(
            "--json", action="store_true", help="print the scores as one JSON object at the end"
        )
    else:
        raise ValueError(f"unknown stage {stage!r}")
    parser.add_argument("--task", help=task_option_help())


def run(args: argparse.Namespace, stage: str) -> int:
    task = load_task(args.task, folds=DEFAULT_FOLDS)
    if stage == "submit":
        check_ensemble_folder(args.predictions.parent)  # an ensemble whose members are unchanged
        check_run_task(args.predictions.parent, task)
        out = make_submission(args.predictions, args.format_path, args.out, args.clip, task)
        print(f"wrote {out} (validated against {args.format_path})")
        return 0
    if stage == "validate":
        problems, notes = check_submission(
            args.submission, args.format_path, args.strict_order, task
        )
        for line in notes + problems:
            print(line)
        if problems:
            print(f"INVALID: {len(problems)} problem(s)", flush=True)
            raise SubmissionError(
                f"{args.submission}: not a valid submission, {len(problems)} problem(s) listed "
                f"above (first: {problems[0].removeprefix(f'{args.submission}: ')}); fix them "
                "and validate again"
            )
        print(f"valid: {args.submission}")
        return 0
    if stage == "score":
        result = score_predictions(args.predictions, args.labels, task)
        print(format_scores(str(args.predictions), result))
        if args.json:
            print(json.dumps(result))
        return 0
    raise ValueError(f"unknown stage {stage!r}")
