"""What a competition folder holds, checked in one pass before any stage runs (`check-data`).

The task names the tables (a train table, maybe a label table and a test table, the submission
format) and where the images are (a path column, or one pattern per split). Downloads often
arrive partial (the tables without the 10 GB of images), so every file is reported, with what is
missing, rather than the first stage failing an hour in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from kaggle_style.constants import FILEPATH_COL, ID_COL, LABEL_COL, SITE_COL
from kaggle_style.data.tables import (
    TableError,
    load_competition_data,
    read_features,
    read_format,
    read_labels,
)
from kaggle_style.errors import UserError, few_ids
from kaggle_style.task import Task, conservision


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
        out = [f"competition folder {self.root}"]
        out += [f"  {n:<{width}}  {status:<3}  {t}" for n, status, t in self.lines]
        out.append(f"{len(self.problems)} problem(s)" if self.problems else "layout ok")
        return "\n".join(out)

    def error(self) -> UserError:
        more = f"; {len(self.problems) - 1} more problem(s) listed above" * (len(self.problems) > 1)
        return UserError(f"{self.root}: {self.problems[0]}{more}")


def check_layout(
    root: str | Path,
    check_images: bool = True,
    allow_outside_data: bool = False,
    task: Task | None = None,
) -> LayoutReport:
    """Every table read and cross-checked, and (unless not `check_images`) every image found."""
    task = task or conservision()
    root = Path(root)
    if not root.is_dir():
        what = "is a file, not a folder" if root.exists() else "folder not found"
        raise UserError(
            f"{root}: {what}; give the competition folder that holds {task.tables.train}"
        )
    report = LayoutReport(root)
    tables = _read_tables(root, report, task)
    loaded = None
    if not report.problems:
        try:
            loaded = load_competition_data(root, task, allow_outside_data=allow_outside_data)
        except UserError as err:
            problem = str(err).removeprefix(f"{root}/").removeprefix(f"{root}: ")
            report.add("cross-check", problem, problem)
    splits = [("train", task.tables.train)]
    if task.tables.test is not None:
        splits.append(("test", task.tables.test))
    for split, table in splits:
        frame = tables.get(table)
        folder = _image_folder(task, split, frame)
        label = folder if task.images.column is None else f"{folder}/"
        if not check_images:
            report.add(label, "images not checked (--csv-only)", skipped=True)
        elif task.images.column is None:
            if loaded is not None:
                report.add(label, f"every {split} id has its file")
            else:
                report.add(label, "images not checked: tables or patterns failed", skipped=True)
        elif frame is None:
            report.add(label, f"images not checked: {table} could not be read", skipped=True)
        else:
            _check_images(root, folder, frame, report)
    return report


def _train_table(path: Path, task: Task) -> pd.DataFrame:
    """The train table's rows; with the labels when they are in it (no label table)."""
    features = read_features(path, task, "train")
    if task.tables.labels is not None:
        return features
    return features.merge(read_labels(path, task=task), on=ID_COL, how="left")


def _image_folder(task: Task, split: str, frame: pd.DataFrame | None) -> str:
    """The folder a split's images are in, for the report: the pattern's, or the first path's."""
    pattern = task.images.train_pattern if split == "train" else task.images.test_pattern
    if pattern is not None:
        return pattern
    if frame is not None and len(frame):
        first = str(frame[FILEPATH_COL].iloc[0]).split("/")[0]
        if first and first != str(frame[FILEPATH_COL].iloc[0]):
            return first
    return f"{split} images"


def _read_tables(root: Path, report: LayoutReport, task: Task) -> dict[str, pd.DataFrame]:
    tables: dict[str, pd.DataFrame] = {}
    names = task.tables
    readers: dict[str, object] = {names.train: lambda p: _train_table(p, task)}
    if names.labels is not None:
        readers[names.labels] = lambda p: read_labels(p, task=task)
    if names.test is not None:
        readers[names.test] = lambda p: read_features(p, task, "test")
    readers[names.submission_format] = lambda p: read_format(p, task)
    for name, reader in readers.items():
        path = root / name
        if not path.is_file():
            report.add(name, "missing", f"{name} is missing")
            continue
        try:
            tables[name] = reader(path)  # type: ignore[operator]
        except TableError as err:
            problem = str(err).removeprefix(f"{root}/")
            report.add(name, problem.removeprefix(f"{name}: "), problem)
            continue
        report.add(name, _describe(name, tables[name], tables, task))
    return tables


def _describe(name: str, frame: pd.DataFrame, tables: dict[str, pd.DataFrame], task: Task) -> str:
    rows = f"{len(frame):,} rows"
    names = task.tables
    n_classes = task.num_classes
    if name == names.submission_format:
        if task.submission.kind == "label":
            return f"{rows}, columns {task.id_column} + {task.submission.label_column}"
        return f"{rows}, columns {task.id_column} + {n_classes} classes"
    parts = [rows]
    if name in (names.train, names.test) and task.group_column is not None:
        group = task.group_column
        grouped = name == names.train or bool((frame[SITE_COL] != frame[ID_COL]).any())
        if grouped:
            parts.append(f"{frame[SITE_COL].nunique():,} {group}s")
        train = tables.get(names.train)
        if name == names.test and train is not None and grouped:
            shared = set(frame[SITE_COL]) & set(train[SITE_COL])
            parts[-1] += f", {len(shared)} of them also in {names.train}"
    if name == (names.labels or names.train):
        counts = frame[LABEL_COL].value_counts()
        rarest = f", rarest {counts.idxmin()} ({counts.min():,})" if len(counts) else ""
        parts.append(f"{frame[LABEL_COL].nunique()} of {n_classes} classes{rarest}")
    return ", ".join(parts)


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
