"""What every benchmark's `main()` shares: where the shared real data is, and one-line errors."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from kaggle_style.cli import USER_ERROR_STATUS, user_error_message
from kaggle_style.constants import SHARED_DATA_ENV
from kaggle_style.errors import UserError


def shared_data(given: str | os.PathLike | None, flag: str = "--shared", sub: str = "") -> Path:
    """The folder `given` (by the benchmark's `flag`), else `sub` inside the shared real-data
    folder named by $KAGGLE_STYLE_SHARED_DATA. No default: a guess relative to the code points
    nowhere once the code lives elsewhere."""
    if given:
        path, source = Path(given), flag
    else:
        env = os.environ.get(SHARED_DATA_ENV, "").strip()
        if not env:
            inside = f" (its {sub}/ is used)" if sub else ""
            raise UserError(
                f"no shared data folder: pass {flag} PATH or set {SHARED_DATA_ENV}"
                f"{inside}; the Makefile passes ../shared/data"
            )
        path, source = Path(env) / sub, SHARED_DATA_ENV
    if not path.is_dir():
        raise UserError(
            f"{path} (from {source}) is not a folder; pass {flag} PATH or set {SHARED_DATA_ENV}"
        )
    return path


def run_main(prog: str, body: Callable[[], int | None]) -> int:
    """`body()`, with a user's mistake printed as one line and exit status 2, as `kaggle-style`."""
    try:
        return int(body() or 0)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        message = user_error_message(err)
        if message is None:
            raise
        print(f"{prog}: error: {message}", file=sys.stderr)
        return USER_ERROR_STATUS
