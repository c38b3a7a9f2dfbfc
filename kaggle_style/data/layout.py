"""What a DrivenData folder holds, checked in one pass before any stage runs (`check-data`).

A competition folder has four tables (`train_features.csv`, `train_labels.csv`,
`test_features.csv`, `submission_format.csv`) and two image folders (`train_features/`,
`test_features/`) that the `filepath` column points into. Downloads often arrive partial (the
tables without the 10 GB of images), so every file is reported, with what is missing, rather
than the first stage failing an hour in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from kaggle_style.constants import (
    CLASSES,
    FILEPATH_COL,
    ID_COL,
    LABEL_COL,
    SITE_COL,
    SUBMISSION_FORMAT,
    TEST_FEATURES,
    TRAIN_FEATURES,
    TRAIN_LABELS,
)
from kaggle_style.data.tables import (
    TableError,
    load_competition_data,
    read_features,
    read_labels,
    read_table,
)
from kaggle_style.errors import UserError, few_ids

IMAGE_FOLDERS = ("train_features", "test_features")


@dataclass
class LayoutReport:
    """One line per file or folder (`name`, ok / BAD / skipped, what it holds), and the problems."""

    root: Path
    lines: list[tuple[str, str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def add(self, name: str, text: str, problem: str | None = None, skipped: bool = False) -> None:
        status = "--" if skipped else "ok" if problem is None else "BAD"
        self.lines.append((name, status, text))
        if problem is not None:
            self.problems.append(problem)

    def format(self) -> str:
        width = max([len(n) for n, _, _ in self.lines] + [10])
        out = [f"DrivenData folder {self.root}"]
        out += [f"  {n:<{width}}  {status:<3}  {t}" for n, status, t in self.lines]
        out.append(f"{len(self.problems)} problem(s)" if self.problems else "layout ok")
        return "\n".join(out)

    def error(self) -> UserError:
        more = f"; {len(self.problems) - 1} more problem(s) listed above" * (len(self.problems) > 1)
        return UserError(f"{self.root}: {self.problems[0]}{more}")


def check_layout(
    root: str | Path, check_images: bool = True, allow_outside_data: bool = False
) -> LayoutReport:
    """Every table read and cross-checked, and (unless not `check_images`) every image found."""
    root = Path(root)
    if not root.is_dir():
        what = "is a file, not a folder" if root.exists() else "folder not found"
        raise UserError(f"{root}: {what}; give the DrivenData folder that holds {TRAIN_FEATURES}")
    report = LayoutReport(root)
    tables = _read_tables(root, report)
    if not report.problems:
        try:
            load_competition_data(root, allow_outside_data=allow_outside_data)
        except TableError as err:
            problem = str(err).removeprefix(f"{root}/")
            report.add("cross-check", problem, problem)
    for folder, table in zip(IMAGE_FOLDERS, (TRAIN_FEATURES, TEST_FEATURES), strict=True):
        frame = tables.get(table)
        if not check_images:
            report.add(f"{folder}/", "images not checked (--csv-only)", skipped=True)
        elif frame is None:
            report.add(f"{folder}/", f"images not checked: {table} could not be read", skipped=True)
        else:
            _check_images(root, folder, frame, report)
    return report


def _read_tables(root: Path, report: LayoutReport) -> dict[str, pd.DataFrame]:
    tables: dict[str, pd.DataFrame] = {}
    readers = {
        TRAIN_FEATURES: read_features,
        TRAIN_LABELS: read_labels,
        TEST_FEATURES: read_features,
        SUBMISSION_FORMAT: lambda p: read_table(p, (ID_COL, *CLASSES)),
    }
    for name, reader in readers.items():
        path = root / name
        if not path.is_file():
            report.add(name, "missing", f"{name} is missing")
            continue
        try:
            tables[name] = reader(path)
        except TableError as err:
            problem = str(err).removeprefix(f"{root}/")
            report.add(name, problem.removeprefix(f"{name}: "), problem)
            continue
        report.add(name, _describe(name, tables[name], tables))
    return tables


def _describe(name: str, frame: pd.DataFrame, tables: dict[str, pd.DataFrame]) -> str:
    rows = f"{len(frame):,} rows"
    if name == TRAIN_LABELS:
        counts = frame[LABEL_COL].value_counts()
        rarest = f", rarest {counts.idxmin()} ({counts.min():,})" if len(counts) else ""
        return f"{rows}, {frame[LABEL_COL].nunique()} of {len(CLASSES)} classes{rarest}"
    if name in (TRAIN_FEATURES, TEST_FEATURES):
        text = f"{rows}, {frame[SITE_COL].nunique():,} sites"
        train = tables.get(TRAIN_FEATURES)
        if name == TEST_FEATURES and train is not None:
            shared = set(frame[SITE_COL]) & set(train[SITE_COL])
            text += f", {len(shared)} of them also in {TRAIN_FEATURES}"
        return text
    return f"{rows}, columns {ID_COL} + {len(CLASSES)} classes"


def _check_images(root: Path, folder: str, frame: pd.DataFrame, report: LayoutReport) -> None:
    """Count the table's image files that exist (and are not empty) under root."""
    sizes = frame[FILEPATH_COL].map(lambda p: _size(root / p))
    missing = sizes.isna()
    empty = sizes.eq(0)
    n, found = len(frame), int((~missing).sum())
    text = f"{found:,} of {n:,} image files found"
    if not (root / folder).is_dir():
        text += f" (no {folder}/ folder)"
    if found == 0 and n:
        report.add(
            f"{folder}/",
            text,
            f"{folder}/: no image files (0 of {n:,} found); put "
            "the competition's images there, or pass --csv-only to check the tables only",
        )
    elif missing.any():
        report.add(
            f"{folder}/",
            text,
            f"{folder}/: {int(missing.sum()):,} of {n:,} images "
            f"missing, e.g. {frame.loc[missing, FILEPATH_COL].iloc[0]} (ids "
            f"{few_ids(frame.loc[missing, ID_COL])})",
        )
    elif empty.any():
        report.add(
            f"{folder}/",
            text,
            f"{folder}/: {int(empty.sum())} empty image file(s) "
            f"(ids {few_ids(frame.loc[empty, ID_COL])}); download them again",
        )
    else:
        report.add(f"{folder}/", text)


def _size(path: Path) -> float | None:
    try:
        return float(os.stat(path).st_size) if path.is_file() else None
    except OSError:
        return None
