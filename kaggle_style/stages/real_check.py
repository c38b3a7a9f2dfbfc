"""`kaggle-style real-check`: pretrained vs random vs prior on the real camtrapR thumbnails."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from kaggle_style.checks.real_check import RECIPE, RUNS, SHARED, real_check
from kaggle_style.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shared", type=Path, default=SHARED, help="the shared data folder")
    parser.add_argument("--work", type=Path, help="work folder (default: a temporary one)")
    parser.add_argument("--runs", nargs="+", choices=tuple(RUNS), default=tuple(RUNS),
                        help="which runs (default: all); the verdict needs pretrained and a "
                             "baseline")
    parser.add_argument("--seed", type=int, default=RECIPE["seed"], help="the recipe's seed")


def run(args: argparse.Namespace) -> int:
    if not (args.shared / "camtrapr").is_dir():
        raise UserError(f"{args.shared}/camtrapr not found: the real data must sit beside the "
                        "repo (../shared/data), or pass --shared PATH")
    with tempfile.TemporaryDirectory(prefix="real_check_") as tmp:
        results = real_check(args.shared, args.work or Path(tmp), tuple(args.runs), args.seed)
    print(f"{'run':<26} {'OOF log loss':>12}")
    print(f"{'class prior':<26} {results['prior_logloss']:>12.4f}")
    for name in args.runs:
        print(f"{name:<26} {results[f'oof_logloss_{name}']:>12.4f}")
    ok = True
    if "pretrained" in args.runs:
        baselines = ["prior_logloss", *(f"oof_logloss_{n}" for n in args.runs
                                        if n.startswith("random"))]
        ok = results["oof_logloss_pretrained"] < min(results[k] for k in baselines)
        beaten = "the prior" + (" and every random-weights run" if len(baselines) > 1 else "")
        print(f"pretrained beats {beaten}: " + ("yes" if ok else "NO"))
    print(json.dumps(results))
    return 0 if ok else 1
