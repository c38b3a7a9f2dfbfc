"""`kaggle-style real-dry-run`: the real Conser-vision tables through every stage on a CPU.

Prints each stage's seconds and peak memory, then one JSON line. `--growth-from F` also runs
the site subset F first and prints how each stage's time grew with the data.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from kaggle_style.checks.real_dry_run import (
    SOURCE,
    DryRunConfig,
    format_growth,
    format_table,
    fresh_work_dir,
    growth,
    real_dry_run,
    save,
    startup_seconds,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--work-dir", default="real_dry_run",
                        help="generated images and every stage's output (emptied first)")
    parser.add_argument("--source", default=str(SOURCE),
                        help="folder of the real Conser-vision CSVs (../shared/data/conservision)")
    parser.add_argument("--fraction", type=float, default=1.0,
                        help="run on this share of the train and test sites, e.g. 0.125")
    parser.add_argument("--growth-from", type=float, metavar="F",
                        help="run fraction F, then --fraction, and compare each stage's time")
    parser.add_argument("--n-splits", type=int, default=5)
    parser.add_argument("--max-steps", type=int, default=20,
                        help="training steps per epoch and fold (the tiny model's cap)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch/OpenMP threads per stage (1 is fastest on a busy 2-core box)")
    parser.add_argument("--no-report", action="store_true", help="skip the report stage")


def run(args: argparse.Namespace) -> int:
    cfg = DryRunConfig(work_dir=args.work_dir, source=args.source, fraction=args.fraction,
                       n_splits=args.n_splits, max_steps=args.max_steps, threads=args.threads,
                       report=not args.no_report)
    if args.growth_from is None:
        result = real_dry_run(cfg)
    else:
        work = fresh_work_dir(Path(args.work_dir))
        small = real_dry_run(replace(cfg, fraction=args.growth_from,
                                     work_dir=str(work / "small")))
        print(format_table(small), flush=True)
        result = real_dry_run(replace(cfg, work_dir=str(work / "full")))
        result["small"] = small
        result["growth"] = growth(small, result, startup_seconds(result["stages"], cfg.threads))
    print(format_table(result))
    if "growth" in result:
        print(format_growth(result["growth"]))
    save(result, args.work_dir)
    print(json.dumps(result))
    return 0 if result["ok"] and result.get("small", result)["ok"] else 1
