"""Site-grouped, class-stratified folds, made once and read by every later stage.

Test sites never appear in training, so validation must hold out whole sites: otherwise the
background gives the answer away and every score is optimistic.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from kaggle_style.config import add_config_arguments, config_dict, resolve_config
from kaggle_style.constants import CLASSES, FOLD_COL, ID_COL, LABEL_COL, SITE_COL
from kaggle_style.data.tables import load_dataset
from kaggle_style.io import git_commit, write_csv, write_yaml


@dataclass
class FoldsConfig:
    data: str = "data/demo"
    out: str = "folds/folds.csv"
    n_splits: int = 5
    seed: int = 42
    # "site" groups by camera site (the competition's setting); "none" is plain stratified k-fold
    # for data whose sites cannot serve as groups (e.g. a species seen at one station only).
    group_by: str = "site"


def make_folds(
    train: pd.DataFrame, n_splits: int, seed: int, group_by: str = "site"
) -> pd.DataFrame:
    """`id, site, label, fold` for every training row; no site spans two folds when grouped."""
    labels = train[LABEL_COL].to_numpy()
    folds = np.full(len(train), -1, dtype=int)
    if group_by == "site":
        n_sites = train[SITE_COL].nunique()
        if n_sites < n_splits:
            raise ValueError(f"{n_sites} sites cannot make {n_splits} site-grouped folds")
        splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        splits = splitter.split(train, labels, groups=train[SITE_COL].to_numpy())
    elif group_by == "none":
        splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        splits = splitter.split(train, labels)
    else:
        raise ValueError(f"group_by must be 'site' or 'none', not {group_by!r}")
    for fold, (_, val_idx) in enumerate(splits):
        folds[val_idx] = fold
    out = train[[ID_COL, SITE_COL, LABEL_COL]].copy()
    out[FOLD_COL] = folds
    return out


def fold_table(folds: pd.DataFrame) -> pd.DataFrame:
    """Per fold: images, sites and the share of each class (what a user checks first)."""
    share = pd.crosstab(folds[FOLD_COL], folds[LABEL_COL], normalize="index")
    share = share.reindex(columns=[c for c in CLASSES if c in share.columns] or share.columns)
    table = pd.DataFrame(
        {
            "images": folds.groupby(FOLD_COL).size(),
            "sites": folds.groupby(FOLD_COL)[SITE_COL].nunique(),
        }
    )
    return table.join(share.round(3))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--data", help="DrivenData folder (train_features.csv, train_labels.csv)")
    parser.add_argument("--out", help="folds file to write (default folds/folds.csv)")
    parser.add_argument("--n-splits", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--group-by", choices=["site", "none"])


def run(args: argparse.Namespace) -> int:
    cfg = resolve_config(
        FoldsConfig, args.config, args.overrides,
        data=args.data, out=args.out, n_splits=args.n_splits, seed=args.seed,
        group_by=args.group_by,
    )
    dataset = load_dataset(cfg.data)
    folds = make_folds(dataset.train, cfg.n_splits, cfg.seed, cfg.group_by)
    out = Path(cfg.out)
    write_csv(out, folds)
    write_yaml(out.with_suffix(".config.yaml"), {**config_dict(cfg), "git_commit": git_commit()})
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(fold_table(folds).to_string())
    print(f"wrote {out} ({len(folds)} images, {folds[SITE_COL].nunique()} sites, "
          f"{cfg.n_splits} folds grouped by {cfg.group_by})")
    return 0
