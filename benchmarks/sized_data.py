"""A DrivenData-layout folder of any size, for checks that must run at the competition's scale.

Tables carry real or generated ids and sites; every id gets its own JPEG file (a few rendered
frames written in turn), so every stage decodes, detects and caches as many files as the real job.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from kaggle_style.constants import FILEPATH_COL, ID_COL, SITE_COL
from kaggle_style.files import write_csv
from kaggle_style.task import CONSERVISION_CLASSES as CLASSES
from kaggle_style.task import SUBMISSION_FORMAT, TEST_FEATURES, TRAIN_FEATURES, TRAIN_LABELS


def generated_tables(
    n_train: int, n_test: int, train_sites: int, test_sites: int, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train features, test features) with ids ZJ000000… and disjoint site names."""
    rng = np.random.default_rng(seed)

    def table(start: int, n: int, sites: int, prefix: str, folder: str) -> pd.DataFrame:
        ids = [f"ZJ{start + i:06d}" for i in range(n)]
        site = [f"{prefix}{s:04d}" for s in np.sort(rng.integers(0, sites, n))]
        return pd.DataFrame(
            {ID_COL: ids, FILEPATH_COL: [f"{folder}/{i}.jpg" for i in ids], SITE_COL: site}
        )

    return (
        table(0, n_train, train_sites, "S", "train_features"),
        table(n_train, n_test, test_sites, "T", "test_features"),
    )


def write_sized_folder(
    out: Path,
    train: pd.DataFrame,
    test: pd.DataFrame,
    width: int,
    height: int,
    unique_frames: int = 64,
    seed: int = 0,
    labels: pd.DataFrame | None = None,
) -> Path:
    """Write the four DrivenData tables and one JPEG per id under `out`; returns `out`."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    if labels is None:
        index = rng.integers(0, len(CLASSES), len(train))  # timing checks: no signal needed
        labels = pd.DataFrame(np.eye(len(CLASSES))[index].astype(float), columns=list(CLASSES))
        labels.insert(0, ID_COL, train[ID_COL].to_numpy())
    write_csv(out / TRAIN_FEATURES, train)
    write_csv(out / TRAIN_LABELS, labels)
    write_csv(out / TEST_FEATURES, test)
    fmt = pd.DataFrame(np.full((len(test), len(CLASSES)), 1 / len(CLASSES)), columns=list(CLASSES))
    fmt.insert(0, ID_COL, test[ID_COL].to_numpy())
    write_csv(out / SUBMISSION_FORMAT, fmt)
    write_images(
        out, [*train[FILEPATH_COL], *test[FILEPATH_COL]], width, height, unique_frames, seed
    )
    return out


def write_images(
    out: Path, filepaths: list[str], width: int, height: int, unique_frames: int = 64, seed: int = 0
) -> None:
    """One JPEG at each `out/filepath` (tables written elsewhere, e.g. real ones)."""
    from benchmarks.frames import render_jpegs

    frames = render_jpegs(seed, unique_frames, width, height)
    files = [out / p for p in filepaths]
    for folder in {f.parent for f in files}:
        folder.mkdir(parents=True, exist_ok=True)

    def write(i: int) -> None:
        files[i].write_bytes(frames[i % len(frames)])

    with ThreadPoolExecutor(min(16, os.cpu_count() or 1)) as pool:
        list(pool.map(write, range(len(files))))
