"""The facts every stage shares: class order, column names and the file names of stage outputs.

One place for each fact, so that no stage can disagree with another about what a file holds.
"""

from __future__ import annotations

CLASSES: tuple[str, ...] = (
    "antelope_duiker",
    "bird",
    "blank",
    "civet_genet",
    "hog",
    "leopard",
    "monkey_prosimian",
    "rodent",
)
ID_COL = "id"
SITE_COL = "site"
FILEPATH_COL = "filepath"
FOLD_COL = "fold"
LABEL_COL = "label"

# DrivenData file names inside a competition data folder.
TRAIN_FEATURES = "train_features.csv"
TRAIN_LABELS = "train_labels.csv"
TEST_FEATURES = "test_features.csv"
SUBMISSION_FORMAT = "submission_format.csv"

# Stage outputs inside a run folder (model run or ensemble).
OOF_FILE = "oof.csv"
TEST_FILE = "test.csv"
METRICS_FILE = "metrics.json"
CONFIG_FILE = "config.yaml"
ENSEMBLE_FILE = "ensemble.json"
FOLDS_FILE = "folds.csv"
