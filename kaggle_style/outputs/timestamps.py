"""A frame's time for the outputs: the info bar's (the meta stage), else the file's EXIF
`DateTimeOriginal` (what camtrapR and exiftool read). Both are the camera's clock; a frame
with neither stays unread."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

_EXIF_IFD = 0x8769
_DATETIME_ORIGINAL = 0x9003
_DATETIME = 0x0132  # IFD0's DateTime: the last resort, often the original time too


def exif_time(path: str | Path) -> str:
    """ISO 8601 (no zone) of the EXIF capture time, or "" when the file has none."""
    try:
        with Image.open(path) as image:
            exif = image.getexif()
            raw = exif.get_ifd(_EXIF_IFD).get(_DATETIME_ORIGINAL) or exif.get(_DATETIME)
    except (OSError, UnidentifiedImageError, ValueError):
        return ""
    try:
        return dt.datetime.strptime(str(raw).strip(), "%Y:%m:%d %H:%M:%S").isoformat()
    except ValueError:
        return ""


def fill_from_exif(
    meta: pd.DataFrame,
    paths: Sequence[str | Path],
    sites: Sequence[str] | np.ndarray | pd.Series,
    gap_seconds: float,
) -> pd.DataFrame:
    """meta.csv rows with the EXIF time where the info bar gave none (`time_source` says
    which), hours and sequences recomputed from the times now known."""
    from kaggle_style.meta.sequences import assign_sequences

    out = meta.copy()
    source = (out["datetime"] != "").map({True: "infobar", False: ""})
    datetime_col = list(out.columns).index("datetime")
    for k in range(len(out)):
        if not source.iat[k]:
            found = exif_time(paths[k])
            if found:
                out.iat[k, datetime_col] = found
                source.iat[k] = "exif"
    exif = (source == "exif").to_numpy()
    if exif.any():
        stamps = pd.to_datetime(out.loc[exif, "datetime"], format="ISO8601")
        out.loc[exif, "hour"] = stamps.dt.hour + stamps.dt.minute / 60 + stamps.dt.second / 3600
        out["sequence"] = assign_sequences(list(sites), out["datetime"], gap_seconds)
    out["time_source"] = source
    return out
