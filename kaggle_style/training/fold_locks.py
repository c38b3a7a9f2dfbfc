"""One process per fold: a lock file per fold folder, also across boxes on a shared disk."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from kaggle_style.files import pid_alive
from kaggle_style.run_contract import fold_dirs

LOCK_FILE = ".lock"


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
        me = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "model_hash": self.key,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
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
