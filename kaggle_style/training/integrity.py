"""A run folder holds one config: fold locks, the done marks, and the check readers make.

No torch here: `ensemble`, `report` and `predict` call `check_run` before they read a run.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import yaml

from kaggle_style.constants import CONFIG_FILE, METRICS_FILE, OOF_FILE, TEST_FILE
from kaggle_style.errors import UserError
from kaggle_style.io import pid_alive

DONE_FILE = "done.json"
LOCK_FILE = ".lock"
COMBINED_FILES = (OOF_FILE, TEST_FILE, METRICS_FILE)


def fold_dirs(run_dir: Path) -> list[Path]:
    return sorted(p for p in Path(run_dir).glob("fold*") if p.is_dir())


def read_done(fold_dir: Path, key: str | None = None) -> dict[str, Any] | None:
    """The fold's done mark if it is complete (and trained under `key`, when given)."""
    path = fold_dir / DONE_FILE
    if not (path.exists() and (fold_dir / OOF_FILE).exists()):
        return None
    done = json.loads(path.read_text())
    return done if key is None or done.get("model_hash") == key else None


def remove_combined(run_dir: Path) -> None:
    """Retraining a fold makes the run's combined files stale until every fold is done again."""
    for name in COMBINED_FILES:
        (Path(run_dir) / name).unlink(missing_ok=True)


def check_run(run_dir: str | Path) -> None:
    """Refuse a model run whose folds mix configs or whose combined files predate a fold."""
    run_dir = Path(run_dir)
    folds = fold_dirs(run_dir)
    if not folds:
        return  # an ensemble's folder: its own stage checked its members
    marks = {p.name: read_done(p) for p in folds}
    hashes = {m["model_hash"] for m in marks.values() if m is not None}
    unfinished = [name for name, m in marks.items() if m is None]
    where = f"run {run_dir}"
    if len(hashes) > 1:
        raise UserError(f"{where}: its folds were trained under {len(hashes)} different configs "
                        f"({', '.join(sorted(hashes))}); retrain it with one config "
                        f"(`kaggle-style train --config ... --name {run_dir.name}`)")
    if unfinished:
        raise UserError(f"{where}: {', '.join(unfinished)} not finished; finish training "
                        "(`kaggle-style train ... --resume`) before using the run")
    config = run_dir / CONFIG_FILE
    if config.exists() and hashes:
        saved = (yaml.safe_load(config.read_text()) or {}).get("model_hash")
        if saved is not None and saved not in hashes:
            raise UserError(f"{where}: {CONFIG_FILE} names config {saved} but its folds were "
                            f"trained under {hashes.pop()}; rerun `kaggle-style train` for it")
    newest_fold = max((p / DONE_FILE).stat().st_mtime for p in folds)
    has_test = any((p / TEST_FILE).exists() for p in folds)  # a data folder may have no test
    for name in (OOF_FILE, TEST_FILE) if has_test else (OOF_FILE,):
        path = run_dir / name
        if not path.exists():
            raise UserError(f"{where}: {name} is missing; rerun `kaggle-style train` with the "
                            "same config to combine its folds")
        if path.stat().st_mtime < newest_fold:
            raise UserError(f"{where}: {name} is older than a fold's {DONE_FILE}; rerun "
                            "`kaggle-style train` with the same config to combine the folds")


def read_lock(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def holder_alive(holder: dict[str, Any]) -> bool:
    """Alive unless it ran on this host and its process is gone (another host's is trusted)."""
    return holder.get("host") != socket.gethostname() or pid_alive(int(holder.get("pid", -1)))


class FoldLock:
    """One process per fold, also across boxes on a shared filesystem (O_EXCL create).

    A lock whose holder ran on this host and is dead is stale and taken over; a lock from another
    host is trusted until removed by hand (the message says which file).
    """

    def __init__(self, fold_dir: Path, key: str) -> None:
        self.path = fold_dir / LOCK_FILE
        self.key = key
        self.holder: dict[str, Any] | None = None
        self.held = False

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = {"pid": os.getpid(), "host": socket.gethostname(), "model_hash": self.key,
              "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self.holder = read_lock(self.path)
                if self.holder is not None and holder_alive(self.holder):
                    return False
                with contextlib.suppress(FileNotFoundError):  # stale: its process is gone
                    self.path.unlink()
                continue
            with os.fdopen(fd, "w") as handle:
                json.dump(me, handle)
            self.held = True
            return True
        return False

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def describe(self) -> str:
        h = self.holder or {}
        return f"{h.get('host', '?')}:{h.get('pid', '?')} since {h.get('started', '?')}"


def live_locks(run_dir: Path) -> list[dict[str, Any]]:
    """Holders of this run's fold locks that are still training."""
    holders = [read_lock(p / LOCK_FILE) for p in fold_dirs(run_dir)]
    return [h for h in holders if h is not None and holder_alive(h)]
