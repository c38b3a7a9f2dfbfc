"""`kaggle-style lb-check`: hold out whole sites as a pseudo-test set and score every stage."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from kaggle_style.config import resolve_config
from kaggle_style.lb_check import lb_check
from kaggle_style.task import task_option_help
from kaggle_style.training.config import TrainConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=Path("configs/demo-crop.yaml"))
    parser.add_argument("--data", default="data/demo")
    parser.add_argument("--share", type=float, default=0.2, help="share of images held out")
    parser.add_argument("--n-splits", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path("lb_check"))
    parser.add_argument("--set", dest="overrides", nargs="+", default=[])
    parser.add_argument("--task", help=task_option_help())


def run(args: argparse.Namespace) -> int:
    cfg = resolve_config(
        TrainConfig, args.config, args.overrides, data=args.data, progress=False, task=args.task
    )
    if cfg.view != "full":
        print(f"note: {args.config} uses view={cfg.view}; the crops manifest must cover the data")
    shutil.rmtree(args.work / "runs", ignore_errors=True)
    result = lb_check(cfg, args.share, args.n_splits, args.seed, args.work)
    print(
        f"local OOF estimate {result['local_oof_log_loss']:.4f} | pseudo-leaderboard "
        f"{result['pseudo_lb_log_loss']:.4f} on {result['held_out_sites']} held-out sites "
        f"| gap {result['gap']:+.4f}"
    )
    before, after = result["site_adapt_nested_oof"]
    print(
        f"temperature only {result['pseudo_lb_log_loss_site_off']:.4f} | with site adaptation "
        f"{result['pseudo_lb_log_loss_site_on']:.4f} on the held-out sites (nested OOF estimate "
        f"{before:.4f} -> {after:.4f})"
    )
    print(json.dumps(result))
    return 0
