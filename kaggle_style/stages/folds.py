"""`kaggle-style folds`: site-grouped, class-stratified folds -> folds/folds.csv."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from kaggle_style.config import add_config_arguments, config_dict, resolve_config
from kaggle_style.constants import SITE_COL
from kaggle_style.data.folds import FoldsConfig, fold_table, make_folds
from kaggle_style.data.tables import load_competition_data
from kaggle_style.files import check_outputs, git_commit, write_csv, write_yaml


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--data", help="DrivenData folder (train_features.csv, train_labels.csv)")
    parser.add_argument("--out", help="folds file to write (default folds/folds.csv)")
    parser.add_argument("--n-splits", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--group-by", choices=["site", "none"])


def run(args: argparse.Namespace) -> int:
    cfg = resolve_config(
        FoldsConfig,
        args.config,
        args.overrides,
        data=args.data,
        out=args.out,
        n_splits=args.n_splits,
        seed=args.seed,
        group_by=args.group_by,
    )
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
