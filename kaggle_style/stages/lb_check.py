"""`kaggle-style lb-check`: hold out whole sites as a pseudo-test set and score every stage."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Annotated

from pydantic import Field

from kaggle_style.config import resolve_config, stage_config
from kaggle_style.config_flags import add_config_arguments, add_config_flags, flag_values
from kaggle_style.lb_check import clear_work, lb_check
from kaggle_style.stages import Command
from kaggle_style.training.config import TrainConfig


@stage_config
class LbCheckConfig:
    """How much of the data `lb-check` holds out, and how it folds the rest."""

    share: Annotated[float, Field(gt=0, lt=1)] = 0.2
    """share of the images held out (whole sites) as the pseudo-test set"""
    n_splits: Annotated[int, Field(ge=2)] = 4
    """folds of the remaining images"""
    seed: int = 0
    """seed of the held-out sites and of the folds"""


def arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(
        parser,
        helps=("the train recipe to check (default %(default)s)", "override keys of the recipe"),
        default=Path("configs/demo-crop.yaml"),
    )
    parser.add_argument("--work", type=Path, default=Path("lb_check"), help="work folder")
    add_config_flags(parser, TrainConfig, only=("data", "task"))
    add_config_flags(parser, LbCheckConfig)


def run(args: argparse.Namespace) -> int:
    data = {k: getattr(args, k) for k in ("data", "task") if getattr(args, k) is not None}
    # (`--seed` is LbCheckConfig's)
    cfg = resolve_config(TrainConfig, args.config, args.overrides, cli={**data, "progress": False})
    check = resolve_config(LbCheckConfig, cli=flag_values(args, LbCheckConfig))
    if cfg.view != "full":
        print(f"note: {args.config} uses view={cfg.view}; the crops manifest must cover the data")
    clear_work(args.work, Path(cfg.data))
    result = lb_check(cfg, check.share, check.n_splits, check.seed, args.work)
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


COMMANDS = {"lb-check": Command(arguments, run)}
