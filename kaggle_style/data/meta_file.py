"""meta.csv read back and checked in one place, for every stage that uses it.

Columns: id, datetime (ISO 8601, camera-local, no UTC offset), hour (0-24), camera, night (0/1),
confidence (0-1), sequence. An empty cell means "not read". A hand-edited value outside the
contract is one error naming the column and the ids, before any stage computes with it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from kaggle_style.constants import ID_COL
from kaggle_style.errors import UserError, few_ids
from kaggle_style.files import read_csv, require_rows

META_COLUMNS = (ID_COL, "datetime", "hour", "camera", "night", "confidence", "sequence")
# Years pandas' nanosecond timestamps hold: the ensemble and the report compute with them.
MIN_YEAR, MAX_YEAR = pd.Timestamp.min.year + 1, pd.Timestamp.max.year - 1


class MetaError(UserError):
    """A meta.csv that does not hold the contract's columns, values, or the ids it should."""


def _bad_datetime(text: str) -> bool:
    if not text:
        return False
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        return True
    return when.tzinfo is not None or not MIN_YEAR <= when.year <= MAX_YEAR


def _bad_number(
    column: pd.Series, low: float, high: float, whole: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(values as float, where a non-empty cell is not a number in [low, high])."""
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
    given = column.astype(str).str.strip().ne("").to_numpy()
    ok = np.isfinite(values) & (values >= low) & (values <= high)
    if whole:
        ok &= np.isin(values, np.arange(low, high + 1))
    return values, given & ~ok


def read_meta(path: str | Path, ids: Sequence[str] | pd.Series | None = None) -> pd.DataFrame:
    """meta.csv back as written (empty strings, NaN hours, nullable night), every value checked.

    With `ids`, every id must have a row (extra rows are fine: meta.csv covers train and test).
    """
    path = Path(path)
    frame = read_csv(path, MetaError, dtype=str, keep_default_na=False)
    require_rows(frame, path, MetaError)
    missing = [c for c in META_COLUMNS if c not in frame.columns]
    if missing:
        raise MetaError(f"{path}: missing column(s) {', '.join(missing)}; rerun kaggle-style meta")
    frame["datetime"] = frame["datetime"].str.strip()
    hours, bad_hour = _bad_number(frame["hour"], 0, 24)
    night, bad_night = _bad_number(frame["night"], 0, 1, whole=True)
    confidence, bad_conf = _bad_number(frame["confidence"], 0, 1)
    checks = [
        (
            "datetime",
            frame["datetime"].map(_bad_datetime).to_numpy(dtype=bool),
            "ISO 8601",
            f" (camera-local time without a UTC offset, years {MIN_YEAR}-{MAX_YEAR})",
        ),
        ("hour", bad_hour, "a number from 0 to 24", ""),
        ("night", bad_night, "0 or 1", ""),
        ("confidence", bad_conf, "a number from 0 to 1", ""),
    ]
    for column, bad, expected, detail in checks:
        if bad.any():
            raise MetaError(
                f"{path}: column '{column}' is not {expected} for {int(bad.sum())} "
                f"id(s): {few_ids(frame.loc[bad, ID_COL])}{detail}; fix the values, "
                "leave them empty where nothing was read, or rerun `kaggle-style meta`"
            )
    frame["hour"] = hours
    frame["night"] = pd.array([None if np.isnan(v) else int(v) for v in night], dtype="Int64")
    frame["confidence"] = np.nan_to_num(confidence, nan=0.0)
    if ids is not None:
        absent = sorted(set(map(str, ids)) - set(frame[ID_COL]))
        if absent:
            raise MetaError(
                f"{path}: no row for {len(absent)} id(s), e.g. {absent[0]}; rerun kaggle-style "
                "meta on the data folder these predictions come from"
            )
    return frame[list(META_COLUMNS)]
