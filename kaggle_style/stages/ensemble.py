"""`kaggle-style ensemble`: blend runs' OOF predictions, then the gated per-row steps."""

from __future__ import annotations

import argparse

from kaggle_style.config import add_config_arguments, resolve_config
from kaggle_style.ensemble.run import EnsembleConfig, ensemble
from kaggle_style.ensemble.table import render
from kaggle_style.files import check_outputs
from kaggle_style.task import task_option_help

MODES = ("off", "auto", "on")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("runs", nargs="*", help="run folders (each with oof.csv and test.csv)")
    parser.add_argument("--data", help="DrivenData folder (default labels, site tables, meta)")
    parser.add_argument("--labels", help="train_labels.csv (default: DATA/train_labels.csv)")
    parser.add_argument("--out", help="ensemble run folder to write, e.g. runs/ens1")
    parser.add_argument("--space", choices=["prob", "logprob", "auto"])
    parser.add_argument("--temperature", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--site-adapt", choices=MODES)
    parser.add_argument("--features", help="test_features.csv (sites of the test ids)")
    parser.add_argument("--train-features", help="train_features.csv (sites of the OOF ids)")
    parser.add_argument("--meta", help="meta.csv of `kaggle-style meta` (default: DATA/meta.csv)")
    parser.add_argument("--sequences", choices=MODES, help="pool over bursts (needs meta)")
    parser.add_argument("--time-adjust", choices=MODES, help="hour and night flag (needs meta)")
    parser.add_argument(
        "--detections",
        help="detections.json (MegaDetector batch format) of the "
        "train and test images, for detection-aware stacking",
    )
    parser.add_argument(
        "--detection-stacking",
        choices=MODES,
        help="per-image member weights from the detector (needs --detections)",
    )
    parser.add_argument("--seed", type=int)
    parser.add_argument("--task", help=task_option_help())


def run(args: argparse.Namespace) -> int:
    cfg = resolve_config(
        EnsembleConfig,
        args.config,
        args.overrides,
        runs=args.runs or None,
        data=args.data,
        labels=args.labels,
        out=args.out,
        space=args.space,
        temperature=args.temperature,
        site_adapt=args.site_adapt,
        features=args.features,
        train_features=args.train_features,
        meta=args.meta,
        sequences=args.sequences,
        time_adjust=args.time_adjust,
        seed=args.seed,
        detections=args.detections,
        detection_stacking=args.detection_stacking,
        task=args.task,
    )
    check_outputs(
        {"--out": cfg.out},
        {
            **{f"run {r}": r for r in cfg.runs},
            "--data": cfg.data,
            "--meta": cfg.meta,
            "--detections": cfg.detections,
        },
    )
    result = ensemble(cfg)
    print(render(result.report, str(cfg.out)))
    return 0
