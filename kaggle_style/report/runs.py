"""A run folder as the report reads it, and the page's one number format.

Everything the page shows comes from files the other stages wrote (metrics.json, ensemble.json,
oof.csv, test.csv, config.yaml, meta.csv) plus the data folder's sites and images, so the report
can be rebuilt at any time without retraining. Numbers from JSON files are printed with DECIMALS
decimals, so the page can be checked against the files by re-formatting them.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kaggle_style.constants import CONFIG_FILE, ENSEMBLE_FILE, METRICS_FILE, OOF_FILE, TEST_FILE
from kaggle_style.errors import UserError
from kaggle_style.files import read_yaml
from kaggle_style.prediction_files import classes_of, read_predictions
from kaggle_style.run_contract import check_run

DECIMALS = 4
TABLE_KEYS = (
    ("log_loss", "log loss"),
    ("accuracy", "accuracy"),
    ("f1_micro", "F1 micro"),
    ("f1_macro", "F1 macro"),
    ("f1_weighted", "F1 weighted"),
)


class ReportError(UserError, ValueError):
    """Inputs a report cannot be made from."""


def fmt(value: Any, decimals: int = DECIMALS) -> str:
    """The one number format of the page (and of the tests that check it)."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    return f"{float(value):.{decimals}f}"


def table(head: list[str], rows: list[list[str]]) -> str:
    """An HTML table; cells are escaped here, so callers pass plain text."""
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{th}</tr>{body}</table>"


@dataclass
class Run:
    """One run folder as the report reads it."""

    name: str
    path: Path
    overall: dict[str, Any]
    oof: pd.DataFrame
    ensemble: dict[str, Any] | None = None
    config: dict[str, Any] = field(default_factory=dict)
    test: pd.DataFrame | None = None

    @property
    def classes(self) -> tuple[str, ...]:
        """The run's classes: its OOF file's class columns, in their order."""
        return classes_of(self.oof, str(self.path))


def load_run(path: Path) -> Run:
    """metrics.json + oof.csv (+ ensemble.json, config.yaml, test.csv when present), from a run
    whose folds share one config and whose combined files are newer than its folds."""
    from kaggle_style.ensemble.inputs import read_ensemble

    check_run(path)
    metrics_path = path / METRICS_FILE
    if not metrics_path.is_file():
        raise ReportError(f"run {path}: {metrics_path} not found; give a trained run folder")
    overall = json.loads(metrics_path.read_text()).get("overall")
    if not overall:
        raise ReportError(f"{metrics_path}: no 'overall' scores; train all folds of the run")
    oof = read_predictions(path / OOF_FILE)
    ens_path, cfg_path, test_path = path / ENSEMBLE_FILE, path / CONFIG_FILE, path / TEST_FILE
    ens = read_ensemble(path)[0].to_dict() if ens_path.is_file() else None  # members unchanged
    config = (read_yaml(cfg_path, ReportError) or {}) if cfg_path.is_file() else {}
    test = read_predictions(test_path) if test_path.is_file() else None
    return Run(path.name or str(path), path, overall, oof, ens, config, test)
