"""Bursts into sequences: a camera trap fires several frames per visit, seconds apart.

Frames of one site whose times lie within `gap_seconds` of the previous frame (in time order)
belong to one sequence (one visit, one animal). A frame without a readable time is its own
sequence: joining it to anything would be a guess.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

DEFAULT_GAP_SECONDS = 60.0


def assign_sequences(
    sites: Sequence[Any] | np.ndarray | pd.Series,
    times: Sequence[Any] | np.ndarray | pd.Series,
    gap_seconds: float = DEFAULT_GAP_SECONDS,
) -> np.ndarray:
    """One sequence id "<site>/<n>" per image, in the input order.

    `times`: anything pandas reads as datetimes (ISO strings, datetime64, Timestamps), with
    empty / None / NaN / NaT where no time was read. `n` counts a site's sequences from 0 in
    time order; untimed images come after the timed ones, in input order.
    """
    if not np.isfinite(gap_seconds) or gap_seconds < 0:
        raise ValueError(f"gap_seconds must be a finite number >= 0, got {gap_seconds!r}")
    site_arr = np.asarray(sites, dtype=object).astype(str)
    if len(site_arr) != len(times):
        raise ValueError(f"{len(site_arr)} sites but {len(times)} times: give one of each per image")
    stamps = pd.to_datetime(pd.Series(list(times), dtype=object).replace("", None), errors="coerce")
    seconds = (stamps - pd.Timestamp(0)).dt.total_seconds().to_numpy()
    out = np.empty(len(site_arr), dtype=object)
    for site in pd.unique(site_arr):
        rows = np.flatnonzero(site_arr == site)
        timed = rows[np.isfinite(seconds[rows])]
        timed = timed[np.argsort(seconds[timed], kind="stable")]
        n = -1
        previous = -np.inf
        for row in timed:
            if seconds[row] - previous > gap_seconds:
                n += 1
            previous = seconds[row]
            out[row] = f"{site}/{n}"
        for row in rows[~np.isfinite(seconds[rows])]:
            n += 1
            out[row] = f"{site}/{n}"
    return out.astype(str)
