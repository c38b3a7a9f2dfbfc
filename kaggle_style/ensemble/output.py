"""The ensemble's folder changes as one unit: written aside, then swapped in.

Its five files are written one after another; written in place, a kill or a full disk between
them would leave new predictions beside an old ensemble.json, which `report`, `submit` and
`predict` would then trust. So every file goes into a hidden sibling folder, and only a complete
folder replaces the old one: atomically where the kernel can exchange two paths (Linux
renameat2), else by two renames, where an interruption leaves no folder (readers say "not
found") and the old one under a hidden name, never a mix.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from kaggle_style.constants import ENSEMBLE_FILE
from kaggle_style.ensemble.config import EnsembleError

_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one step; False where the system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    return renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b),
                     _RENAME_EXCHANGE) == 0


def check_out_folder(out: Path) -> None:
    """Before any work: `out` must be new, empty or an ensemble's folder."""
    if out.exists() and not out.is_dir():
        raise EnsembleError(f"{out}: is a file; give a folder as the ensemble's --out")
    if out.is_dir() and any(out.iterdir()) and not (out / ENSEMBLE_FILE).is_file():
        raise EnsembleError(f"{out}: holds files but no {ENSEMBLE_FILE}, so it is not an "
                            "ensemble's folder and would be replaced; give a new folder as --out")


@contextlib.contextmanager
def folder_swapped_in(out: Path) -> Iterator[Path]:
    """Yield an empty hidden folder beside `out`; it becomes `out` only if the block succeeds."""
    out = Path(out)
    check_out_folder(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    new = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".new", dir=out.parent))
    try:
        yield new
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(new, 0o777 & ~umask)  # mkdtemp makes 0700 folders
        if not out.exists():
            os.replace(new, out)
        elif _exchange(new, out):
            shutil.rmtree(new)  # now the old folder
        else:
            old = new.with_suffix(".old")
            os.replace(out, old)
            os.replace(new, out)
            shutil.rmtree(old)
    finally:
        if new.exists():
            shutil.rmtree(new, ignore_errors=True)
