"""The prediction-file contract in one place: `id` + the class columns (+ `fold` for OOF files).

Every stage that reads or writes probabilities goes through here, so a model run, an ensemble
and a submission can never disagree about column order, dtype or what "sums to 1" means.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from kaggle_style.constants import FOLD_COL, ID_COL, SUM_TOLERANCE
from kaggle_style.errors import UserError, few_ids
from kaggle_style.files import read_csv, write_csv

__all__ = [
    "PredictionError",
    "align",
    "check_predictions",
    "classes_of",
    "few_ids",
    "make_frame",
    "probs_of",
    "read_predictions",
    "write_predictions",
]


class PredictionError(UserError, ValueError):
    """A prediction file (or a set of them) that breaks the contract."""


# Columns of a prediction file that are not classes: the id, the fold, and what `predict` adds.
NOT_CLASS_COLUMNS = frozenset({ID_COL, FOLD_COL, "top_class", "filepath", "site"})


def classes_of(frame: pd.DataFrame, where: str = "predictions") -> tuple[str, ...]:
    """A prediction file's classes: its columns other than the id and the fold, in file order."""
    classes = tuple(str(c) for c in frame.columns if c not in NOT_CLASS_COLUMNS)
    if len(classes) < 2:
        raise PredictionError(
            f"{where}: {len(classes)} class column(s) ({', '.join(classes) or 'none'}); a "
            "prediction file has the id and one probability column per class"
        )
    return classes


def check_predictions(
    frame: pd.DataFrame,
    where: str = "predictions",
    require_fold: bool = False,
    classes: tuple[str, ...] | None = None,
) -> pd.DataFrame:
    """The frame in canonical form (id str, classes float64, fold int), or a PredictionError.

    `classes` None takes the file's own class columns (`classes_of`); given, they must all be
    there (other columns are dropped). Rows are renormalised after the check so that sums within
    SUM_TOLERANCE become exact.
    """
    if classes is None:
        classes = classes_of(frame, where)
    missing = [c for c in (ID_COL, *classes) if c not in frame.columns]
    if require_fold and FOLD_COL not in frame.columns:
        missing.append(FOLD_COL)
    if missing:
        raise PredictionError(
            f"{where}: missing column(s) {', '.join(missing)}; "
            f"found {', '.join(map(str, frame.columns))}"
        )
    if frame.empty:
        raise PredictionError(f"{where}: no rows")
    ids = frame[ID_COL]
    if ids.isna().any():
        raise PredictionError(f"{where}: {int(ids.isna().sum())} row(s) without an id")
    ids = ids.astype(str)
    dup = ids[ids.duplicated()].unique()
    if len(dup):
        raise PredictionError(f"{where}: duplicate ids {few_ids(dup)}")
    values = frame[list(classes)].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        raise PredictionError(
            f"{where}: non-numeric, NaN or infinite values for ids {few_ids(ids[bad])}"
        )
    bad = ((values < 0) | (values > 1)).any(axis=1)
    if bad.any():
        raise PredictionError(f"{where}: probabilities outside [0, 1] for ids {few_ids(ids[bad])}")
    sums = values.sum(axis=1)
    bad = np.abs(sums - 1.0) > SUM_TOLERANCE
    if bad.any():
        raise PredictionError(
            f"{where}: rows do not sum to 1 (tolerance {SUM_TOLERANCE:g}) "
            f"for ids {few_ids(ids[bad])}"
        )
    out = pd.DataFrame({ID_COL: ids.to_numpy()})
    out[list(classes)] = values / sums[:, None]
    if FOLD_COL in frame.columns:
        folds = pd.to_numeric(frame[FOLD_COL], errors="coerce")
        if folds.isna().any() or (folds != folds.round()).any():
            raise PredictionError(f"{where}: column '{FOLD_COL}' must hold integers")
        out[FOLD_COL] = folds.to_numpy().astype(np.int64)
    return out


def read_predictions(
    path: str | os.PathLike, require_fold: bool = False, classes: tuple[str, ...] | None = None
) -> pd.DataFrame:
    """Read and check a prediction file (an OOF file when `require_fold`)."""
    frame = read_csv(path, PredictionError, dtype={ID_COL: str})
    return check_predictions(frame, str(path), require_fold, classes)


def make_frame(
    ids: Sequence[str] | np.ndarray,
    probs: np.ndarray,
    folds: Sequence[int] | np.ndarray | None = None,
    *,
    classes: tuple[str, ...],
) -> pd.DataFrame:
    """A prediction frame from arrays (what the trainer and the ensemble produce)."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.shape != (len(ids), len(classes)):
        raise PredictionError(
            f"probabilities have shape {probs.shape}, expected ({len(ids)}, {len(classes)})"
        )
    frame = pd.DataFrame({ID_COL: np.asarray(ids, dtype=str)})
    frame[list(classes)] = probs / probs.sum(axis=1, keepdims=True)
    if folds is not None:
        frame[FOLD_COL] = np.asarray(folds, dtype=np.int64)
    return frame


def write_predictions(
    path: str | os.PathLike, frame: pd.DataFrame, classes: tuple[str, ...] | None = None
) -> Path:
    """Check `frame` and write it atomically in canonical column order at full precision."""
    checked = check_predictions(frame, str(path), classes=classes)
    return write_csv(path, checked)


def probs_of(frame: pd.DataFrame, classes: tuple[str, ...] | None = None) -> np.ndarray:
    """The (n, n_classes) float64 probability matrix of a prediction frame (its own classes
    when `classes` is None)."""
    classes = classes_of(frame) if classes is None else classes
    return frame[list(classes)].to_numpy(dtype=np.float64)


def align(frames: Mapping[str, pd.DataFrame], check_folds: bool = True) -> dict[str, pd.DataFrame]:
    """The frames reordered to the first one's ids, after checking all cover the same ids/folds.

    Blending rows of different images would be silently wrong, so any difference is an error
    that names each run and the ids it lacks or has in excess.
    """
    if not frames:
        raise PredictionError("no prediction frames to align")
    names = list(frames)
    ref_name = names[0]
    ref_ids = frames[ref_name][ID_COL].astype(str)
    ref_set = set(ref_ids)
    problems = []
    for name in names[1:]:
        ids = set(frames[name][ID_COL].astype(str))
        lacks = sorted(ref_set - ids)
        extra = sorted(ids - ref_set)
        if lacks:
            problems.append(
                f"{name} lacks {len(lacks)} id(s) that {ref_name} has: {few_ids(lacks)}"
            )
        if extra:
            problems.append(
                f"{name} has {len(extra)} extra id(s) that {ref_name} lacks: {few_ids(extra)}"
            )
    if problems:
        raise PredictionError("runs do not cover the same ids: " + "; ".join(problems))
    out = {
        name: f.set_index(f[ID_COL].astype(str)).loc[pd.Index(ref_ids)].reset_index(drop=True)
        for name, f in frames.items()
    }
    if check_folds:
        has_fold = [FOLD_COL in f.columns for f in out.values()]
        if any(has_fold) and not all(has_fold):
            lacking = [n for n, h in zip(names, has_fold, strict=True) if not h]
            raise PredictionError(f"runs without a '{FOLD_COL}' column: {', '.join(lacking)}")
        if all(has_fold):
            ref_folds = out[ref_name][FOLD_COL].to_numpy()
            for name in names[1:]:
                differ = out[name][FOLD_COL].to_numpy() != ref_folds
                if differ.any():
                    problems.append(
                        f"{name} puts {int(differ.sum())} id(s) in other folds than {ref_name}: "
                        f"{few_ids(ref_ids[differ])}"
                    )
            if problems:
                raise PredictionError(
                    "runs do not share the same folds (were they trained on different "
                    "folds files?): " + "; ".join(problems)
                )
    return out
