"""`kaggle-style train`: a config in, every fold's OOF and test predictions out."""

from __future__ import annotations

import argparse

from kaggle_style.config import add_config_arguments, resolve_config
from kaggle_style.task import task_option_help
from kaggle_style.training.config import TrainConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--name", help="run name: outputs go to RUNS_DIR/NAME/")
    parser.add_argument("--data", help="DrivenData folder")
    parser.add_argument("--folds-file", help="folds file written by `kaggle-style folds`")
    parser.add_argument("--runs-dir")
    parser.add_argument("--backbone", help="any timm model name")
    parser.add_argument("--epochs", type=int)
    parser.add_argument(
        "--fold",
        type=int,
        action="append",
        dest="fold_list",
        help="train only this fold (repeatable)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        default=None,
        help="continue each unfinished fold from its last checkpoint",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars (CI logs)")
    parser.add_argument("--task", help=task_option_help())


def run(args: argparse.Namespace) -> int:
    cfg = resolve_config(
        TrainConfig,
        args.config,
        args.overrides,
        name=args.name,
        data=args.data,
        folds_file=args.folds_file,
        runs_dir=args.runs_dir,
        backbone=args.backbone,
        epochs=args.epochs,
        folds=args.fold_list,
        resume=args.resume,
        progress=False if args.quiet else None,
        task=args.task,
    )
    from kaggle_style.training.run import run_training

    run_training(cfg)
    return 0
