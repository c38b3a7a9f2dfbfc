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
    times: Sequence[Any] | np.ndarray | pd.Series | pd.Index,
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
        raise ValueError(f"{len(site_arr)} sites, {len(times)} times: give one of each per image")
    if not len(site_arr):  # no images, no sequences
        return np.array([], dtype=str)
    stamps = pd.to_datetime(
        pd.Series(list(times), dtype=object).replace("", None), errors="coerce", format="mixed"
    )
    seconds = (stamps - pd.Timestamp(0)).dt.total_seconds().to_numpy(dtype=np.float64)
    timed = np.isfinite(seconds)
    codes, names = pd.factorize(site_arr)
    # Each site's timed images in time order, then its untimed ones in input order.
    order = np.lexsort((np.arange(len(codes)), np.where(timed, seconds, 0.0), ~timed, codes))
    code, sec, ok = codes[order], seconds[order], timed[order]
    new_site = np.r_[True, code[1:] != code[:-1]]
    joins = np.r_[False, ok[1:] & ok[:-1] & (np.diff(sec) <= gap_seconds)]
    starts = np.cumsum(new_site | ~joins)
    number = starts - np.maximum.accumulate(np.where(new_site, starts, 0))
    out = np.empty(len(codes), dtype=object)
    out[order] = [f"{names[c]}/{n}" for c, n in zip(code, number, strict=True)]
    return out.astype(str)
