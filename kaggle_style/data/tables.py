"""Read and validate a competition's tables through its task, failing before any work with a
message that names the file, the column and a few offending ids.

Whatever the competition calls them, the tables come out in the project's own columns: `id`,
`filepath` (relative to DATA), `site` (the task's group column, or the id itself when the task
has none) and `label` (a class name), so that every later stage reads one shape.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from kaggle_style.constants import FILEPATH_COL, FOLD_COL, ID_COL, LABEL_COL, SITE_COL, TEXT_COLUMNS
from kaggle_style.data.patterns import find_images
from kaggle_style.errors import UserError, few_ids
from kaggle_style.files import read_csv, require_rows
from kaggle_style.task import Task, conservision


class TableError(UserError, ValueError):
    """A competition table that cannot be used as it is."""


def _text_columns(task: Task | None) -> tuple[str, ...]:
    if task is None:
        return TEXT_COLUMNS
    named = (
        task.id_column,
        task.images.column,
        task.group_column,
        task.labels.column,
        task.submission.label_column,
    )
    return (*TEXT_COLUMNS, *(c for c in named if c))


def read_table(
    path: str | os.PathLike[str],
    required: tuple[str, ...],
    id_column: str = ID_COL,
    task: Task | None = None,
) -> pd.DataFrame:
    """Read a CSV whose ids and sites stay the strings written and whose required columns all
    exist."""
    path = Path(path)
    frame = require_rows(read_csv(path, TableError, text=_text_columns(task)), path, TableError)
    require_columns(path, frame, required)
    if id_column in frame.columns:
        dup = frame.loc[frame[id_column].duplicated(), id_column]
        if len(dup):
            raise TableError(
                f"{path}: column '{id_column}' has duplicate ids: {few_ids(dup.unique())}"
            )
        empty = frame[id_column].isna() | (frame[id_column].astype(str).str.strip() == "")
        if empty.any():
            raise TableError(f"{path}: column '{id_column}' is empty in {int(empty.sum())} row(s)")
    return frame


def require_columns(path: Path, frame: pd.DataFrame, required: tuple[str, ...]) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise TableError(
            f"{path}: missing column(s) {', '.join(missing)}; "
            f"found {', '.join(map(str, frame.columns))}"
        )


def _check_filled(
    path: Path, frame: pd.DataFrame, columns: tuple[str, ...], id_column: str
) -> None:
    for col in columns:
        bad = frame.loc[frame[col].isna() | (frame[col].astype(str).str.strip() == ""), id_column]
        if len(bad):
            raise TableError(f"{path}: column '{col}' is missing for ids {few_ids(bad)}")


def read_features(path: str | Path, task: Task | None = None, split: str = "train") -> pd.DataFrame:
    """`id, filepath, site` from a table holding the task's ids, path column and group column;
    every row must name a group and a file. (With image patterns, `filepath` is left empty here:
    `load_competition_data` finds the files.)"""
    task = task or conservision()
    path = Path(path)
    image_col, group_col = task.images.column, task.group_column
    frame = read_table(path, (task.id_column,), task.id_column, task)
    # a test table may lack the group column: its images then form groups of one
    group_needed = group_col is not None and (split == "train" or group_col in frame.columns)
    required = (
        task.id_column,
        *(c for c in (image_col,) if c),
        *((group_col,) if group_needed and group_col else ()),
    )
    require_columns(path, frame, required)
    _check_filled(path, frame, tuple(c for c in required if c != task.id_column), task.id_column)
    out = pd.DataFrame({ID_COL: frame[task.id_column].astype(str)})
    out[FILEPATH_COL] = frame[image_col] if image_col else ""
    out[SITE_COL] = frame[group_col] if group_needed and group_col else out[ID_COL]
    return out.reset_index(drop=True)


def read_labels(
    path: str | os.PathLike[str], classes: tuple[str, ...] | None = None, task: Task | None = None
) -> pd.DataFrame:
    """`id, label`: from one-hot class columns (checked one-hot) or from a label column (checked
    against the classes)."""
    task = task or conservision()
    classes = tuple(classes) if classes is not None else task.classes
    if task.labels.kind == "column":
        return _read_label_column(Path(path), classes, task)
    id_col = task.id_column
    frame = read_table(path, (id_col, *classes), id_col, task)
    values = frame[list(classes)].apply(pd.to_numeric, errors="coerce")
    bad = frame.loc[values.isna().any(axis=1), id_col]
    if len(bad):
        raise TableError(f"{path}: non-numeric label cells for ids {few_ids(bad)}")
    arr = values.to_numpy()
    not_binary = ~np.isin(arr, (0, 1)).all(axis=1)
    not_one = arr.sum(axis=1) != 1
    bad = frame.loc[not_binary | not_one, id_col]
    if len(bad):
        raise TableError(
            f"{path}: labels are not one-hot (each row needs exactly one 1 among "
            f"{', '.join(classes)}) for ids {few_ids(bad)}"
        )
    out = pd.DataFrame({ID_COL: frame[id_col].astype(str)})
    out[LABEL_COL] = np.asarray(classes)[arr.argmax(axis=1)]
    return out


def _read_label_column(path: Path, classes: tuple[str, ...], task: Task) -> pd.DataFrame:
    column = task.labels.column or LABEL_COL
    frame = read_table(path, (task.id_column, column), task.id_column, task)
    _check_filled(path, frame, (column,), task.id_column)
    labels = frame[column].astype(str).str.strip()
    unknown = sorted(set(labels) - set(classes))
    if unknown:
        raise TableError(
            f"{path}: column '{column}' names {len(unknown)} class(es) not in task "
            f"{task.name}'s classes: {few_ids(unknown)}; add them to classes in the task file "
            "(and the submission format) or fix the labels"
        )
    return pd.DataFrame({ID_COL: frame[task.id_column].astype(str), LABEL_COL: labels})


@dataclass(frozen=True)
class CompetitionData:
    """A competition data folder: train rows with labels and test rows (paths relative to root)."""

    root: Path
    train: pd.DataFrame  # id, filepath, site, label
    test: pd.DataFrame  # id, filepath, site
    task: Task = field(default_factory=conservision)

    @property
    def classes(self) -> tuple[str, ...]:
        return self.task.classes


def load_competition_data(
    root: str | Path,
    task: Task | None = None,
    allow_outside_data: bool = False,
) -> CompetitionData:
    """Read and cross-check the task's tables of a data folder.

    Image paths must stay inside `root` unless `allow_outside_data`: a `filepath` such as
    `../../etc/passwd`, or an absolute path to a test image, would otherwise be read silently.
    """
    task = task or conservision()
    names = task.tables
    root = Path(root)
    if not root.is_dir():
        raise TableError(
            f"{root}: data folder not found (give DATA=path to the competition folder)"
        )
    features = read_features(root / names.train, task, "train")
    labels_name = names.labels or names.train
    labels = read_labels(root / labels_name, task=task)
    if names.labels is not None:
        only_labels = sorted(set(labels[ID_COL]) - set(features[ID_COL]))
        only_features = sorted(set(features[ID_COL]) - set(labels[ID_COL]))
        if only_labels:
            raise TableError(
                f"{root / names.labels}: label ids without a row in {names.train}: "
                f"{few_ids(only_labels)}"
            )
        if only_features:
            raise TableError(
                f"{root / names.train}: ids without a row in {names.labels}: "
                f"{few_ids(only_features)}"
            )
    train = features.merge(labels, on=ID_COL, how="left", validate="one_to_one")
    fmt_path = root / names.submission_format
    fmt = read_format(fmt_path, task) if fmt_path.exists() else None
    test_name = names.test or names.submission_format
    test_path = root / test_name
    if names.test is not None and test_path.exists():
        test = read_features(test_path, task, "test")
    elif names.test is None and fmt is not None:
        test = pd.DataFrame({ID_COL: fmt[task.id_column].astype(str)})
        test[FILEPATH_COL] = ""
        test[SITE_COL] = test[ID_COL]
    else:
        test = train.iloc[:0][list(features.columns)]
    if task.images.column is None:
        train[FILEPATH_COL] = find_images(
            root, str(task.images.train_pattern), train[ID_COL], "train"
        )
        if len(test):
            test[FILEPATH_COL] = find_images(
                root, str(task.images.test_pattern), test[ID_COL], "test"
            )
    clash = sorted(set(test[ID_COL]) & set(train[ID_COL]))
    if clash:
        raise TableError(f"{test_path}: ids also in {names.train}: {few_ids(clash)}")
    if not allow_outside_data:
        for name, frame in ((names.train, train), (test_name, test)):
            check_inside(root / name, frame)
    check_no_shared_files(root, train, test, names.train, test_name)
    if fmt is not None:
        check_format_ids(fmt_path, fmt, test, task, test_name)
    return CompetitionData(root=root, train=train, test=test, task=task)


def read_format(path: str | os.PathLike[str], task: Task) -> pd.DataFrame:
    """The submission format: the id column and, for probabilities, every class column; for a
    label submission, the label column."""
    required: tuple[str, ...]
    if task.submission.kind == "label":
        required = (task.id_column, str(task.submission.label_column))
    else:
        required = (task.id_column, *task.classes)
    return read_table(path, required, task.id_column, task)


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


def check_no_shared_files(
    root: Path, train: pd.DataFrame, test: pd.DataFrame, train_name: str, test_name: str
) -> None:
    """No image file is both a training and a test image (links and `..` resolved)."""
    if test.empty:
        return

    def real(frame: pd.DataFrame) -> pd.Series:
        return frame[FILEPATH_COL].map(lambda p: os.path.realpath(root / p))

    train_real, test_real = real(train), real(test)
    shared = test_real.isin(set(train_real))
    if shared.any():
        raise TableError(
            f"{root / test_name}: {int(shared.sum())} test image(s) are also training "
            f"images in {train_name} (test ids {few_ids(test.loc[shared, ID_COL])}, file "
            f"{test_real[shared].iloc[0]}); each file must be in one table only"
        )


def check_format_ids(
    path: Path, fmt: pd.DataFrame, test: pd.DataFrame, task: Task, test_name: str
) -> None:
    """The submission format lists exactly the test ids (else no submission can be valid)."""
    if test.empty:
        return
    fmt_ids = set(fmt[task.id_column].astype(str))
    lacks = sorted(set(test[ID_COL]) - fmt_ids)
    extra = sorted(fmt_ids - set(test[ID_COL]))
    if lacks or extra:
        parts = [f"{len(lacks)} test id(s) missing: {few_ids(lacks)}"] if lacks else []
        parts += [f"{len(extra)} id(s) not in {test_name}: {few_ids(extra)}"] if extra else []
        raise TableError(
            f"{path}: ids differ from {test_name} ({'; '.join(parts)}); use the format file "
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
