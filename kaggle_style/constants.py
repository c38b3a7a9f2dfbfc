"""The facts every stage shares: the project's own column names and the file names of stage
outputs. What a competition names (classes, tables, its columns) is its task (`kaggle_style.task`).

One place for each fact, so that no stage can disagree with another about what a file holds.
"""

from __future__ import annotations

from typing import Literal

# The training augmentations by name: the config's choices and `data.transforms`' pipelines.
Augment = Literal["none", "light", "medium", "strong"]

# How far a row of probabilities may sum from 1 in any prediction or submission file. Our own files
# are exact to ~1e-15; 1e-4 still accepts files written elsewhere at 6 decimals (8 roundings of
# 5e-7 can add to 4e-6, which 1e-6 would reject) and float32 softmax outputs, while any real
# mistake (a lost column, unnormalised scores) is off by far more. The scorer renormalises rows.
SUM_TOLERANCE = 1e-4
ID_COL = "id"
SITE_COL = "site"
FILEPATH_COL = "filepath"
FOLD_COL = "fold"
LABEL_COL = "label"

# The folder of shared real data (weights, real frames) for the detector's default weights and
# the benchmarks: an installed package cannot know where a checkout's neighbours are.
SHARED_DATA_ENV = "KAGGLE_STYLE_SHARED_DATA"

# Stage outputs inside a run folder (model run or ensemble).
OOF_FILE = "oof.csv"
TEST_FILE = "test.csv"
METRICS_FILE = "metrics.json"
CONFIG_FILE = "config.yaml"
ENSEMBLE_FILE = "ensemble.json"
FOLDS_FILE = "folds.csv"
META_FILE = "meta.csv"  # info-bar readings of every train and test id (kaggle-style meta)
# Columns read as the exact strings written, never as numbers or missing values: an id or a site
# called `NA`, `null` or `0012` is that string (kaggle_style.files.read_csv).
TEXT_COLUMNS: tuple[str, ...] = (
    ID_COL,
    SITE_COL,
    FILEPATH_COL,
    LABEL_COL,
    "crop_path",
    "datetime",
    "camera",
    "sequence",
)
