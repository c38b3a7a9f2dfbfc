"""One module per command (or a few related commands), imported only when its command runs.

Each module declares `COMMANDS = {"name": Command(arguments, run)}`; `kaggle_style.cli`
lists the names with their one-line help (so `kaggle-style --help` imports no stage) and builds
the parser of the command asked for. A config field's flag comes from `config_flags`; only what
is no config field (input and output paths, a switch of the command) is written here by hand.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    """A command's arguments and what it does: `run(args)` returns the exit status."""

    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
