"""`kaggle-style submit | validate | score`: write, check and score submission files.

`validate` lists every problem of a file on stdout, then ends like any user error: one line on
stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kaggle_style.config_flags import add_task_option
from kaggle_style.ensemble.inputs import check_ensemble_folder
from kaggle_style.run_contract import check_run_task
from kaggle_style.stages import Command
from kaggle_style.submission import (
    DEFAULT_CLIP,
    SubmissionError,
    check_submission,
    format_scores,
    make_submission,
    score_predictions,
)
from kaggle_style.task import DEFAULT_FOLDS, load_task


def submit_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--predictions",
        required=True,
        type=Path,
        help="a prediction file, e.g. runs/<name>/test.csv",
    )
    _format_argument(parser)
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


def run_submit(args: argparse.Namespace) -> int:
    check_ensemble_folder(args.predictions.parent)  # an ensemble whose members are unchanged
    task = load_task(args.task, folds=DEFAULT_FOLDS)
    check_run_task(args.predictions.parent, task)
    out = make_submission(args.predictions, args.format_path, args.out, args.clip, task)
    print(f"wrote {out} (validated against {args.format_path})")
    return 0


def validate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("submission", type=Path, help="the submission CSV to check")
    _format_argument(parser)
    parser.add_argument(
        "--strict-order", action="store_true", help="also require the format file's row order"
    )


def run_validate(args: argparse.Namespace) -> int:
    task = load_task(args.task, folds=DEFAULT_FOLDS)
    problems, notes = check_submission(args.submission, args.format_path, args.strict_order, task)
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


def score_arguments(parser: argparse.ArgumentParser) -> None:
    _task_argument(parser)
    parser.add_argument("predictions", type=Path, help="an OOF or submission-shaped file")
    parser.add_argument(
        "--labels",
        required=True,
        type=Path,
        help="the task's label table (e.g. train_labels.csv, train.csv)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the scores as one JSON object at the end"
    )


def run_score(args: argparse.Namespace) -> int:
    result = score_predictions(
        args.predictions, args.labels, load_task(args.task, folds=DEFAULT_FOLDS)
    )
    print(format_scores(str(args.predictions), result))
    if args.json:
        print(json.dumps(result))
    return 0


def _task_argument(parser: argparse.ArgumentParser) -> None:
    add_task_option(parser)


def _format_argument(parser: argparse.ArgumentParser) -> None:
    _task_argument(parser)
    parser.add_argument(
        "--format",
        required=True,
        type=Path,
        dest="format_path",
        help="the competition's submission format file",
    )


COMMANDS = {
    "submit": Command(submit_arguments, run_submit),
    "validate": Command(validate_arguments, run_validate),
    "score": Command(score_arguments, run_score),
}
