"""The crops manifest as every reader sees it: which file shows an image at a threshold.

`detect.crops` writes it; training, `predict` and the report read it through here, so no reader
imports the detector stage.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from kaggle_style.constants import ID_COL
from kaggle_style.errors import UserError
from kaggle_style.files import read_csv

MANIFEST_COLUMNS = (ID_COL, "threshold", "crop_path", "x", "y", "w", "h", "conf", "fallback")


class ManifestError(UserError, ValueError):
    """A crops manifest that is missing, malformed, or lacks the threshold asked for."""


def load_manifest(path: str | os.PathLike) -> pd.DataFrame:
    """A manifest with `id` as str, `fallback` as bool and every `crop_path` absolute."""
    path = Path(path)
    frame = read_csv(path, ManifestError, dtype={ID_COL: str, "crop_path": str})
    missing = [c for c in MANIFEST_COLUMNS if c not in frame.columns]
    if missing:
        raise ManifestError(
            f"{path}: not a crop manifest, missing column(s) "
            f"{', '.join(missing)}; rerun `kaggle-style crop`"
        )
    base = str(path.parent.resolve())
    # os.path.join keeps an absolute path as it is, like Path's `/`, at a fraction of the cost
    frame["crop_path"] = [os.path.join(base, p) for p in frame["crop_path"]]
    frame["fallback"] = frame["fallback"].astype(str).str.lower().eq("true")
    return frame


def crop_paths(manifest: pd.DataFrame, threshold: float) -> dict[str, list[Path]]:
    """id -> the images to use at this threshold (one in best mode, best box first in all
    mode), as absolute paths when the manifest came from `load_manifest`."""
    available = np.unique(manifest["threshold"].to_numpy(dtype=float))
    match = available[np.isclose(available, threshold)]
    if not len(match):
        raise ManifestError(
            f"threshold {threshold} is not in the manifest; it has "
            f"{', '.join(map(str, available))}: set crop_threshold to one of them or rerun "
            "`kaggle-style crop` with it in --thresholds"
        )
    rows = manifest[np.isclose(manifest["threshold"].to_numpy(dtype=float), match[0])]
    out: dict[str, list[Path]] = {}
    for image_id, crop in zip(rows[ID_COL], rows["crop_path"], strict=True):
        out.setdefault(str(image_id), []).append(Path(crop))
    return out
