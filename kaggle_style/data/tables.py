"""Read and validate the DrivenData tables, failing before any work with a message that names
the file, the column and a few offending ids."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kaggle_style.constants import (
    CLASSES,
    FILEPATH_COL,
    FOLD_COL,
    ID_COL,
    LABEL_COL,
    SITE_COL,
    SUBMISSION_FORMAT,
    TEST_FEATURES,
    TRAIN_FEATURES,
    TRAIN_LABELS,
)

MAX_IDS_SHOWN = 5


class TableError(ValueError):
    """A competition table that cannot be used as it is."""


def _few(ids: object) -> str:
    values = list(ids)
    shown = ", ".join(str(v) for v in values[:MAX_IDS_SHOWN])
    more = f" (+{len(values) - MAX_IDS_SHOWN} more)" if len(values) > MAX_IDS_SHOWN else ""
    return shown + more


def read_table(path: str | Path, required: tuple[str, ...]) -> pd.DataFrame:
    """Read a CSV whose `id` column stays a string and whose required columns all exist."""
    path = Path(path)
    if not path.is_file():
        raise TableError(f"{path}: file not found")
    try:
        frame = pd.read_csv(path, dtype={ID_COL: str, SITE_COL: str, FILEPATH_COL: str})
    except pd.errors.EmptyDataError as err:
        raise TableError(f"{path}: the file is empty") from err
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise TableError(
            f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(map(str, frame.columns))}"
        )
    if ID_COL in frame.columns:
        dup = frame.loc[frame[ID_COL].duplicated(), ID_COL]
        if len(dup):
            raise TableError(f"{path}: column '{ID_COL}' has duplicate ids: {_few(dup.unique())}")
        empty = frame[ID_COL].isna()
        if empty.any():
            raise TableError(f"{path}: column '{ID_COL}' is empty in {int(empty.sum())} row(s)")
    return frame


def read_features(path: str | Path) -> pd.DataFrame:
    """`id, filepath, site`; every row must name a site and a file."""
    frame = read_table(path, (ID_COL, FILEPATH_COL, SITE_COL))
    for col in (SITE_COL, FILEPATH_COL):
        bad = frame.loc[frame[col].isna() | (frame[col].astype(str).str.strip() == ""), ID_COL]
        if len(bad):
            raise TableError(f"{path}: column '{col}' is missing for ids {_few(bad)}")
    return frame[[ID_COL, FILEPATH_COL, SITE_COL]].reset_index(drop=True)


def read_labels(path: str | Path, classes: tuple[str, ...] = CLASSES) -> pd.DataFrame:
    """`id` + one-hot class columns; adds `label` (the class name) after checking one-hotness."""
    frame = read_table(path, (ID_COL, *classes))
    values = frame[list(classes)].apply(pd.to_numeric, errors="coerce")
    bad = frame.loc[values.isna().any(axis=1), ID_COL]
    if len(bad):
        raise TableError(f"{path}: non-numeric label cells for ids {_few(bad)}")
    arr = values.to_numpy()
    not_binary = ~np.isin(arr, (0, 1)).all(axis=1)
    not_one = arr.sum(axis=1) != 1
    bad = frame.loc[not_binary | not_one, ID_COL]
    if len(bad):
        raise TableError(
            f"{path}: labels are not one-hot (each row needs exactly one 1 among "
            f"{', '.join(classes)}) for ids {_few(bad)}"
        )
    out = frame[[ID_COL]].copy()
    out[LABEL_COL] = np.asarray(classes)[arr.argmax(axis=1)]
    return out


@dataclass(frozen=True)
class Dataset:
    """A competition data folder: train rows with labels, test rows, and the submission format."""

    root: Path
    train: pd.DataFrame  # id, filepath, site, label
    test: pd.DataFrame  # id, filepath, site
    submission_format: pd.DataFrame | None

    def image_path(self, filepath: str) -> Path:
        return self.root / filepath


def load_dataset(root: str | Path, classes: tuple[str, ...] = CLASSES) -> Dataset:
    """Read and cross-check the four DrivenData tables of a data folder."""
    root = Path(root)
    if not root.is_dir():
        raise TableError(f"{root}: data folder not found (give DATA=path to a DrivenData folder)")
    features = read_features(root / TRAIN_FEATURES)
    labels = read_labels(root / TRAIN_LABELS, classes)
    only_labels = sorted(set(labels[ID_COL]) - set(features[ID_COL]))
    only_features = sorted(set(features[ID_COL]) - set(labels[ID_COL]))
    if only_labels:
        raise TableError(
            f"{root / TRAIN_LABELS}: label ids without a row in {TRAIN_FEATURES}: {_few(only_labels)}"
        )
    if only_features:
        raise TableError(
            f"{root / TRAIN_FEATURES}: ids without a row in {TRAIN_LABELS}: {_few(only_features)}"
        )
    train = features.merge(labels, on=ID_COL, how="left", validate="one_to_one")
    test_path = root / TEST_FEATURES
    test = read_features(test_path) if test_path.exists() else train.iloc[:0][list(features.columns)]
    clash = sorted(set(test[ID_COL]) & set(train[ID_COL]))
    if clash:
        raise TableError(f"{test_path}: ids also in {TRAIN_FEATURES}: {_few(clash)}")
    fmt_path = root / SUBMISSION_FORMAT
    fmt = read_table(fmt_path, (ID_COL, *classes)) if fmt_path.exists() else None
    return Dataset(root=root, train=train, test=test, submission_format=fmt)


def read_folds(path: str | Path, train: pd.DataFrame | None = None) -> pd.DataFrame:
    """`id, site, label, fold`; when `train` is given, the folds must cover exactly its ids."""
    path = Path(path)
    frame = read_table(path, (ID_COL, SITE_COL, LABEL_COL, FOLD_COL))
    if train is not None:
        missing = sorted(set(train[ID_COL]) - set(frame[ID_COL]))
        extra = sorted(set(frame[ID_COL]) - set(train[ID_COL]))
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"{len(missing)} training id(s) have no fold: {_few(missing)}")
            if extra:
                parts.append(f"{len(extra)} id(s) are not in the training data: {_few(extra)}")
            raise TableError(
                f"{path}: the folds file does not match the data ({'; '.join(parts)}); "
                "rebuild it with `kaggle-style folds`"
            )
        merged = frame.merge(train[[ID_COL, SITE_COL, LABEL_COL]], on=ID_COL, suffixes=("", "_data"))
        changed = merged.loc[
            (merged[SITE_COL] != merged[f"{SITE_COL}_data"])
            | (merged[LABEL_COL] != merged[f"{LABEL_COL}_data"]),
            ID_COL,
        ]
        if len(changed):
            raise TableError(
                f"{path}: site or label differs from the data for ids {_few(changed)}; "
                "rebuild it with `kaggle-style folds`"
            )
    return frame
