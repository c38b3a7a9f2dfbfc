"""`kaggle-style folds`: site-grouped, class-stratified folds -> folds/folds.csv."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from kaggle_style.config import config_dict
from kaggle_style.config_flags import add_config_arguments, add_config_flags, config_from_args
from kaggle_style.constants import SITE_COL
from kaggle_style.data.folds import FoldsConfig, fold_table, make_folds
from kaggle_style.data.tables import load_competition_data
from kaggle_style.files import check_outputs, git_commit, write_csv, write_yaml
from kaggle_style.stages import Command


def arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    add_config_flags(parser, FoldsConfig)


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(FoldsConfig, args)
    check_outputs({"out": cfg.out}, {"data": cfg.data})
    competition = load_competition_data(cfg.data, allow_outside_data=cfg.allow_outside_data)
    folds = make_folds(competition.train, cfg.n_splits, cfg.seed, cfg.group_by)
    out = Path(cfg.out)
    write_csv(out, folds)
    write_yaml(out.with_suffix(".config.yaml"), {**config_dict(cfg), "git_commit": git_commit()})
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(fold_table(folds).to_string())
    print(
        f"wrote {out} ({len(folds)} images, {folds[SITE_COL].nunique()} sites, "
        f"{cfg.n_splits} folds grouped by {cfg.group_by})"
    )
    return 0


COMMANDS = {"folds": Command(arguments, run)}
