"""Test-only: with KAGGLE_STYLE_WRITE_LOG set, note `pid path` for every output kaggle_style.files
renames into place, so a test can count the processes writing each file. A process started with
this folder on PYTHONPATH loads it at start-up; the product holds no hook for it."""

import os

_LOG = os.environ.get("KAGGLE_STYLE_WRITE_LOG")

if _LOG:
    import sys

    _replace = os.replace

    def _logged_replace(src, dst, *args, **kwargs):
        _replace(src, dst, *args, **kwargs)
        if sys._getframe(1).f_code.co_filename.endswith(os.path.join("kaggle_style", "files.py")):
            with open(_LOG, "a") as handle:
                handle.write(f"{os.getpid()} {os.path.realpath(dst)}\n")

    os.replace = _logged_replace
