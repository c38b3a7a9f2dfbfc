"""Read and validate the DrivenData tables, failing before any work with a message that names
the file, the column and a few offending ids."""

from __future__ import annotations

import os
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
from kaggle_style.errors import UserError, few_ids
from kaggle_style.files import read_csv, require_rows


class TableError(UserError, ValueError):
    """A competition table that cannot be used as it is."""


def read_table(path: str | os.PathLike[str], required: tuple[str, ...]) -> pd.DataFrame:
    """Read a CSV whose ids and sites stay the strings written and whose required columns all
    exist."""
    path = Path(path)
    frame = require_rows(read_csv(path, TableError), path, TableError)
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise TableError(
            f"{path}: missing column(s) {', '.join(missing)}; "
            f"found {', '.join(map(str, frame.columns))}"
        )
    if ID_COL in frame.columns:
        dup = frame.loc[frame[ID_COL].duplicated(), ID_COL]
        if len(dup):
            raise TableError(
                f"{path}: column '{ID_COL}' has duplicate ids: {few_ids(dup.unique())}"
            )
        empty = frame[ID_COL].isna() | (frame[ID_COL].astype(str).str.strip() == "")
        if empty.any():
            raise TableError(f"{path}: column '{ID_COL}' is empty in {int(empty.sum())} row(s)")
    return frame


def read_features(path: str | Path) -> pd.DataFrame:
    """`id, filepath, site`; every row must name a site and a file."""
    frame = read_table(path, (ID_COL, FILEPATH_COL, SITE_COL))
    for col in (SITE_COL, FILEPATH_COL):
        bad = frame.loc[frame[col].isna() | (frame[col].astype(str).str.strip() == ""), ID_COL]
        if len(bad):
            raise TableError(f"{path}: column '{col}' is missing for ids {few_ids(bad)}")
    return frame[[ID_COL, FILEPATH_COL, SITE_COL]].reset_index(drop=True)


def read_labels(path: str | os.PathLike[str], classes: tuple[str, ...] = CLASSES) -> pd.DataFrame:
    """`id` + one-hot class columns; adds `label` (the class name) after checking one-hotness."""
    frame = read_table(path, (ID_COL, *classes))
    values = frame[list(classes)].apply(pd.to_numeric, errors="coerce")
    bad = frame.loc[values.isna().any(axis=1), ID_COL]
    if len(bad):
        raise TableError(f"{path}: non-numeric label cells for ids {few_ids(bad)}")
    arr = values.to_numpy()
    not_binary = ~np.isin(arr, (0, 1)).all(axis=1)
    not_one = arr.sum(axis=1) != 1
    bad = frame.loc[not_binary | not_one, ID_COL]
    if len(bad):
        raise TableError(
            f"{path}: labels are not one-hot (each row needs exactly one 1 among "
            f"{', '.join(classes)}) for ids {few_ids(bad)}"
        )
    out = frame[[ID_COL]].copy()
    out[LABEL_COL] = np.asarray(classes)[arr.argmax(axis=1)]
    return out


@dataclass(frozen=True)
class CompetitionData:
    """A competition data folder: train rows with labels and test rows (paths relative to root)."""

    root: Path
    train: pd.DataFrame  # id, filepath, site, label
    test: pd.DataFrame  # id, filepath, site


def load_competition_data(
    root: str | Path, classes: tuple[str, ...] = CLASSES, allow_outside_data: bool = False
) -> CompetitionData:
    """Read and cross-check the DrivenData tables of a data folder.

    Image paths must stay inside `root` unless `allow_outside_data`: a `filepath` such as
    `../../etc/passwd`, or an absolute path to a test image, would otherwise be read silently.
    """
    root = Path(root)
    if not root.is_dir():
        raise TableError(f"{root}: data folder not found (give DATA=path to a DrivenData folder)")
    features = read_features(root / TRAIN_FEATURES)
    labels = read_labels(root / TRAIN_LABELS, classes)
    only_labels = sorted(set(labels[ID_COL]) - set(features[ID_COL]))
    only_features = sorted(set(features[ID_COL]) - set(labels[ID_COL]))
    if only_labels:
        raise TableError(
            f"{root / TRAIN_LABELS}: label ids without a row in {TRAIN_FEATURES}: "
            f"{few_ids(only_labels)}"
        )
    if only_features:
        raise TableError(
            f"{root / TRAIN_FEATURES}: ids without a row in {TRAIN_LABELS}: "
            f"{few_ids(only_features)}"
        )
    train = features.merge(labels, on=ID_COL, how="left", validate="one_to_one")
    test_path = root / TEST_FEATURES
    test = (
        read_features(test_path) if test_path.exists() else train.iloc[:0][list(features.columns)]
    )
    clash = sorted(set(test[ID_COL]) & set(train[ID_COL]))
    if clash:
        raise TableError(f"{test_path}: ids also in {TRAIN_FEATURES}: {few_ids(clash)}")
    if not allow_outside_data:
        for name, frame in ((TRAIN_FEATURES, train), (TEST_FEATURES, test)):
            check_inside(root / name, frame)
    check_no_shared_files(root, train, test)
    fmt_path = root / SUBMISSION_FORMAT
    if fmt_path.exists():
        check_format_ids(fmt_path, read_table(fmt_path, (ID_COL, *classes)), test)
    return CompetitionData(root=root, train=train, test=test)


def escapes(filepath: str) -> bool:
    """Whether a features-table `filepath` leaves its data folder (absolute, or `..` above it)."""
    norm = os.path.normpath(filepath)
    return os.path.isabs(norm) or norm == ".." or norm.startswith(".." + os.sep)


def check_inside(path: Path, frame: pd.DataFrame) -> None:
    """Every `filepath` of a features table stays inside the table's folder."""
    outside = frame[FILEPATH_COL].map(escapes)
    if outside.any():
        first = frame.loc[outside, FILEPATH_COL].iloc[0]
        raise TableError(
            f"{path}: column '{FILEPATH_COL}' points outside the data folder {path.parent} "
            f"(e.g. {first!r}) for ids {few_ids(frame.loc[outside, ID_COL])}; give paths relative "
            "to the folder, or set allow_outside_data: true if that is intended"
        )


def check_no_shared_files(root: Path, train: pd.DataFrame, test: pd.DataFrame) -> None:
    """No image file is both a training and a test image (links and `..` resolved)."""
    if test.empty:
        return

    def real(frame: pd.DataFrame) -> pd.Series:
        return frame[FILEPATH_COL].map(lambda p: os.path.realpath(root / p))

    train_real, test_real = real(train), real(test)
    shared = test_real.isin(set(train_real))
    if shared.any():
        raise TableError(
            f"{root / TEST_FEATURES}: {int(shared.sum())} test image(s) are also training "
            f"images in {TRAIN_FEATURES} (test ids {few_ids(test.loc[shared, ID_COL])}, file "
            f"{test_real[shared].iloc[0]}); each file must be in one table only"
        )


def check_format_ids(path: Path, fmt: pd.DataFrame, test: pd.DataFrame) -> None:
    """The submission format lists exactly the test ids (else no submission can be valid)."""
    if test.empty:
        return
    lacks = sorted(set(test[ID_COL]) - set(fmt[ID_COL]))
    extra = sorted(set(fmt[ID_COL]) - set(test[ID_COL]))
    if lacks or extra:
        parts = [f"{len(lacks)} test id(s) missing: {few_ids(lacks)}"] if lacks else []
        parts += [f"{len(extra)} id(s) not in {TEST_FEATURES}: {few_ids(extra)}"] if extra else []
        raise TableError(
            f"{path}: ids differ from {TEST_FEATURES} ({'; '.join(parts)}); use the format file "
            "that came with the test features"
        )


def read_folds(path: str | Path, train: pd.DataFrame | None = None) -> pd.DataFrame:
    """`id, site, label, fold`; when `train` is given, the folds must cover exactly its ids."""
    path = Path(path)
    frame = read_table(path, (ID_COL, SITE_COL, LABEL_COL, FOLD_COL))
    folds = pd.to_numeric(frame[FOLD_COL], errors="coerce")
    bad = folds.isna() | (folds != folds.round()) | (folds < 0)
    if bad.any():
        raise TableError(
            f"{path}: column '{FOLD_COL}' must hold whole numbers >= 0, not for ids "
            f"{few_ids(frame.loc[bad, ID_COL])}; rebuild it with `kaggle-style folds`"
        )
    frame[FOLD_COL] = folds.astype(np.int64)
    if train is not None:
        missing = sorted(set(train[ID_COL]) - set(frame[ID_COL]))
        extra = sorted(set(frame[ID_COL]) - set(train[ID_COL]))
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"{len(missing)} training id(s) have no fold: {few_ids(missing)}")
            if extra:
                parts.append(f"{len(extra)} id(s) are not in the training data: {few_ids(extra)}")
            raise TableError(
                f"{path}: the folds file does not match the data ({'; '.join(parts)}); "
                "rebuild it with `kaggle-style folds`"
            )
        merged = frame.merge(
            train[[ID_COL, SITE_COL, LABEL_COL]], on=ID_COL, suffixes=("", "_data")
        )
        changed = merged.loc[
            (merged[SITE_COL] != merged[f"{SITE_COL}_data"])
            | (merged[LABEL_COL] != merged[f"{LABEL_COL}_data"]),
            ID_COL,
        ]
        if len(changed):
            raise TableError(
                f"{path}: site or label differs from the data for ids {few_ids(changed)}; "
                "rebuild it with `kaggle-style folds`"
            )
    return frame
