"""The image cache's disk budget: room checked before a build, a full disk reported in one line,
temporary files that a killed build left behind removed, and caches no config uses listed.

A cache of 21k images at 448 px is tens of GB; a build that dies half-way through on a full disk
must say so and leave nothing behind, or the next run finds the disk still full.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from kaggle_style.files import DiskFullError, free_bytes, human, pid_alive

CACHE_FIX = (
    "free space there (`kaggle-style clean-cache --yes` removes caches no config uses) "
    "or set cache_dir to a larger disk, then rerun"
)
META_FILE = "meta.json"  # written last: a cache folder without it is unfinished
# A temp file of ours: .<name>.<host>.<pid>.tmp; mkstemp's .<name>.<random>.tmp names no writer
_OWN_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<host>[^.]+)\.(?P<pid>\d+)\.tmp$")
STALE_AFTER_S = 3600.0  # a temp file untouched this long has no live writer (ours rewrite often)


def check_free_space(folder: str | os.PathLike, needed: int, what: str) -> None:
    """Refuse to start a write that cannot fit, before any time is spent decoding."""
    free = free_bytes(folder)
    if needed > free:
        raise DiskFullError(
            f"{what} needs {human(needed)} ({needed} bytes) in {folder}, but that disk has "
            f"{human(free)} ({free} bytes) free; free space there (`kaggle-style clean-cache "
            f"--yes` removes caches no config uses) or set cache_dir to a larger disk"
        )


def temp_path(target: Path) -> Path:
    """A temp name beside `target` that says who writes it, so a later run can tell a dead
    writer's leftover from a live one's file."""
    return target.with_name(
        f".{target.name}.{socket.gethostname().split('.')[0]}.{os.getpid()}.tmp"
    )


def preallocate(handle: IO[bytes], size: int) -> None:
    """Reserve `size` bytes now: a full disk fails here, at once, instead of half-way through.
    Filesystems without fallocate fall back to plain writes, which still raise ENOSPC."""
    if hasattr(os, "posix_fallocate"):
        try:
            os.posix_fallocate(handle.fileno(), 0, size)
        except OSError as err:
            if err.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                raise


def stale_temps(folder: str | os.PathLike, now: float | None = None) -> list[Path]:
    """Temp files in `folder` whose writer is gone: ours with a dead pid on this host, or any
    `.*.tmp` not written to for an hour (mkstemp names, other hosts' files: no pid to ask)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    host = socket.gethostname().split(".")[0]
    now = time.time() if now is None else now
    out = []
    for path in folder.glob(".*.tmp"):
        match = _OWN_TEMP.match(path.name)
        try:
            idle = now - path.stat().st_mtime
        except FileNotFoundError:
            continue
        if match and match["host"] == host:
            if int(match["pid"]) != os.getpid() and not pid_alive(int(match["pid"])):
                out.append(path)
        elif idle > STALE_AFTER_S:
            out.append(path)
    return sorted(out)


def remove_stale_temps(folder: str | os.PathLike) -> int:
    """Remove what `stale_temps` finds; return the bytes freed."""
    freed = 0
    for path in stale_temps(folder):
        try:
            freed += path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            continue
    return freed


@dataclass(frozen=True)
class CacheFolder:
    """One `cache_dir/<key>/` folder and what removing it would free."""

    key: str
    folder: Path
    bytes: int
    complete: bool


def folder_bytes(folder: Path) -> int:
    """Allocated bytes (du), not apparent size: what deleting the folder gives back."""
    total = 0
    for path in folder.rglob("*"):
        try:
            stat = path.lstat()
        except FileNotFoundError:
            continue
        if path.is_file():
            total += stat.st_blocks * 512
    return total


def list_caches(cache_dir: str | os.PathLike) -> list[CacheFolder]:
    """Every cache folder under `cache_dir` (a folder per key), finished or not."""
    root = Path(cache_dir)
    if not root.is_dir():
        return []
    return [
        CacheFolder(p.name, p, folder_bytes(p), (p / META_FILE).is_file())
        for p in sorted(root.iterdir())
        if p.is_dir() and not p.name.startswith(".")
    ]


@dataclass(frozen=True)
class CleanPlan:
    """What `clean-cache` keeps and removes (stale temp files inside kept caches included)."""

    keep: list[CacheFolder]
    remove: list[CacheFolder]
    stale: list[Path]

    @property
    def bytes_freed(self) -> int:
        return sum(c.bytes for c in self.remove) + sum(_size(p) for p in self.stale)


def _size(path: Path) -> int:
    try:
        return path.stat().st_blocks * 512
    except FileNotFoundError:
        return 0


def plan_clean(cache_dir: str | os.PathLike, used_keys: Iterable[str]) -> CleanPlan:
    """Caches whose key no config uses are removed; stale temp files anywhere are removed."""
    used = set(used_keys)
    caches = list_caches(cache_dir)
    keep = [c for c in caches if c.key in used]
    stale = [p for c in keep for p in stale_temps(c.folder)]
    return CleanPlan(keep=keep, remove=[c for c in caches if c.key not in used], stale=stale)


def apply_clean(plan: CleanPlan) -> int:
    """Delete what the plan removes; return the bytes freed."""
    freed = plan.bytes_freed
    for cache in plan.remove:
        shutil.rmtree(cache.folder, ignore_errors=True)
    for path in plan.stale:
        path.unlink(missing_ok=True)
    return freed
