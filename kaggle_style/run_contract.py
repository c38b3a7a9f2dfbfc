"""What a finished model run holds, checked by every reader before it uses the run.

A run holds one config: `config.yaml` carries its model hash, each `fold<k>/done.json` the hash
the fold was trained under, beside the fold's `oof.csv` and whole `model.safetensors`; the run's
combined files exist only while every fold is done under one hash, and are newer than each fold.
No torch here: `ensemble`, `report` and `predict` import it as the trainer does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kaggle_style.constants import (
    CONFIG_FILE,
    ENSEMBLE_FILE,
    FOLD_COL,
    ID_COL,
    METRICS_FILE,
    OOF_FILE,
    TEST_FILE,
)
from kaggle_style.errors import UserError
from kaggle_style.files import read_csv, read_yaml
from kaggle_style.task import Task

DONE_FILE = "done.json"
MODEL_FILE = "model.safetensors"
COMBINED_FILES = (OOF_FILE, TEST_FILE, METRICS_FILE)
RETRAIN = "rerun `kaggle-style train` with the same config (add --resume to keep other folds)"


def fold_dirs(run_dir: Path) -> list[Path]:
    return sorted(p for p in Path(run_dir).glob("fold*") if p.is_dir())


def read_done(fold_dir: Path, key: str | None = None) -> dict[str, Any] | None:
    """The fold's done mark if it is complete (and trained under `key`, when given); a mark
    that is not whole JSON is one error naming it."""
    path = fold_dir / DONE_FILE
    if not (path.exists() and (fold_dir / OOF_FILE).exists()):
        return None
    try:
        done = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(
            f"{path}: not a whole done mark ({type(err).__name__}: {err}); delete it and {RETRAIN}"
        ) from err
    if not isinstance(done, dict) or not isinstance(done.get("model_hash"), str):
        raise UserError(f"{path}: a done mark without a model_hash; delete it and {RETRAIN}")
    return done if key is None or done.get("model_hash") == key else None


def remove_combined(run_dir: Path) -> None:
    """Retraining a fold makes the run's combined files stale until every fold is done again."""
    for name in COMBINED_FILES:
        (Path(run_dir) / name).unlink(missing_ok=True)


def check_model_file(path: Path) -> None:
    """A fold's weights are there and whole (safetensors' header covers the file exactly)."""
    if not path.is_file():
        raise UserError(f"{path}: missing, so the run cannot predict with every fold; {RETRAIN}")
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as handle:
            handle.keys()
    except (SafetensorError, OSError) as err:
        raise UserError(
            f"{path}: not a whole model file ({' '.join(str(err).split())}); "
            f"delete it and {RETRAIN}"
        ) from err


def run_task_record(run_dir: str | Path) -> dict[str, Any] | None:
    """The task (name, classes) a model run's config.yaml or an ensemble's ensemble.json
    recorded; None for a folder that holds neither (runs of before tasks: the default task)."""
    run_dir = Path(run_dir)
    config, ensemble = run_dir / CONFIG_FILE, run_dir / ENSEMBLE_FILE
    if ensemble.is_file():
        try:
            data = json.loads(ensemble.read_text())
        except (OSError, ValueError):
            return None  # the ensemble's own reader names what is wrong with the file
    elif config.is_file():
        data = read_yaml(config) or {}
    else:
        return None
    if not isinstance(data, dict):
        return None
    return {"task": data.get("task"), "classes": data.get("classes")} if "task" in data else {}


def run_classes(run_dir: str | Path) -> tuple[str, ...]:
    """The classes a model run or ensemble predicts, in order: its oof.csv's class columns."""
    path = Path(run_dir) / OOF_FILE
    header = read_csv(path, UserError, nrows=0).columns
    return tuple(str(c) for c in header if c not in (ID_COL, FOLD_COL))


def shared_classes(run_dir: Path, members: list[Path], task: Task | None) -> tuple[str, ...]:
    """The class order every member of `run_dir` predicts; with `task`, refused in one line
    unless the runs were made for it and predict its classes in its order."""
    classes = run_classes(members[0])
    for member in members:
        if task is not None:
            check_run_task(member, task)
            task.check_classes(run_classes(member), f"run {member}")
        elif run_classes(member) != classes:
            raise UserError(f"run {member}: predicts other classes than {members[0]}")
    if task is not None:
        check_run_task(run_dir, task)
    return classes


def check_run_task(run_dir: str | Path, task: Task) -> None:
    """Refuse, in one line, a run or ensemble made for another task or another class order."""
    record = run_task_record(run_dir)
    if record is not None:
        task.check_record(record, f"run {run_dir}")


def check_run(run_dir: str | Path, models: bool = False) -> None:
    """Refuse a model run whose folds mix configs, are unfinished, or whose combined files
    predate a fold; with `models`, also one whose folds lack whole weights (what predict uses)."""
    run_dir = Path(run_dir)
    folds = fold_dirs(run_dir)
    if not folds:
        return  # an ensemble's folder: its own stage checked its members
    marks = {p.name: read_done(p) for p in folds}
    hashes = {m["model_hash"] for m in marks.values() if m is not None}
    unfinished = [name for name, m in marks.items() if m is None]
    where = f"run {run_dir}"
    if len(hashes) > 1:
        raise UserError(
            f"{where}: its folds were trained under {len(hashes)} different configs "
            f"({', '.join(sorted(hashes))}); retrain it with one config "
            f"(`kaggle-style train --config ... --name {run_dir.name}`)"
        )
    if unfinished:
        raise UserError(
            f"{where}: {', '.join(unfinished)} not finished; finish training "
            "(`kaggle-style train ... --resume`) before using the run"
        )
    config = run_dir / CONFIG_FILE
    if config.exists() and hashes:
        saved = (read_yaml(config) or {}).get("model_hash")
        if saved is not None and saved not in hashes:
            raise UserError(
                f"{where}: {CONFIG_FILE} names config {saved} but its folds were "
                f"trained under {hashes.pop()}; rerun `kaggle-style train` for it"
            )
    newest_fold = max((p / DONE_FILE).stat().st_mtime for p in folds)
    has_test = any((p / TEST_FILE).exists() for p in folds)  # a data folder may have no test
    for name in (OOF_FILE, TEST_FILE) if has_test else (OOF_FILE,):
        path = run_dir / name
        if not path.exists():
            raise UserError(
                f"{where}: {name} is missing; rerun `kaggle-style train` with the "
                "same config to combine its folds"
            )
        if path.stat().st_mtime < newest_fold:
            raise UserError(
                f"{where}: {name} is older than a fold's {DONE_FILE}; rerun "
                "`kaggle-style train` with the same config to combine the folds"
            )
    if models:
        for fold in folds:
            check_model_file(fold / MODEL_FILE)
