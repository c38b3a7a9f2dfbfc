"""Site-grouped, class-stratified folds, made once and read by every later stage.

Test sites never appear in training, so validation must hold out whole sites: otherwise the
background gives the answer away and every score is optimistic.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
import pandas as pd
from pydantic import Field
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from kaggle_style.config import stage_config
from kaggle_style.constants import FOLD_COL, ID_COL, LABEL_COL, SITE_COL
from kaggle_style.errors import UserError

GroupBy = Literal["site", "none"]


@stage_config
class FoldsConfig:
    data: str = "data/demo"
    """DrivenData folder (train_features.csv, train_labels.csv)"""
    out: str = "folds/folds.csv"
    """folds file to write"""
    n_splits: Annotated[int, Field(ge=2)] = 5
    """number of folds"""
    seed: int = 42
    """seed of the fold assignment"""
    group_by: GroupBy = "site"
    """site: no camera site spans two folds (the competition's setting); none: plain stratified
    k-fold, for data whose sites cannot serve as groups (a species seen at one station only)"""
    allow_outside_data: bool = False
    """accept image paths outside the data folder (absolute or ../); refused otherwise"""
    task: str | None = None
    """the task file or name (configs/tasks/NAME.yaml); default: the one recorded beside out,
    else conservision"""


def make_folds(
    train: pd.DataFrame, n_splits: int, seed: int, group_by: GroupBy = "site"
) -> pd.DataFrame:
    """`id, site, label, fold` for every training row; no site spans two folds when grouped."""
    labels = train[LABEL_COL].to_numpy()
    folds = np.full(len(train), -1, dtype=int)
    if group_by == "site":
        n_sites = train[SITE_COL].nunique()
        if n_sites < n_splits:
            raise UserError(
                f"{n_sites} sites cannot make {n_splits} site-grouped folds; lower n_splits "
                "or use group_by none"
            )
        splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        splits = splitter.split(train, labels, groups=train[SITE_COL].to_numpy())
    elif group_by == "none":
        if len(train) < n_splits:
            raise UserError(f"{len(train)} images cannot make {n_splits} folds; lower n_splits")
        splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        splits = splitter.split(train, labels)
    else:
        raise ValueError(f"group_by must be 'site' or 'none', not {group_by!r}")
    for fold, (_, val_idx) in enumerate(splits):
        folds[val_idx] = fold
    out = train[[ID_COL, SITE_COL, LABEL_COL]].copy()
    out[FOLD_COL] = folds
    return out


def fold_table(folds: pd.DataFrame, classes: tuple[str, ...] = ()) -> pd.DataFrame:
    """Per fold: images, sites and the share of each class (what a user checks first)."""
    share = pd.crosstab(folds[FOLD_COL], folds[LABEL_COL], normalize="index")
    share = share.reindex(columns=[c for c in classes if c in share.columns] or share.columns)
    table = pd.DataFrame(
        {
            "images": folds.groupby(FOLD_COL).size(),
            "sites": folds.groupby(FOLD_COL)[SITE_COL].nunique(),
        }
    )
    return table.join(share.round(3))
