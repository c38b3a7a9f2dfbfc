"""kaggle_style: camera-trap competition submissions, from folds to a validated CSV."""

__version__ = "0.1.0"
