"""The one base class for mistakes a user can fix: `kaggle-style` prints them as one line, exit 2.

A stage raises `UserError` (or a subclass) for bad tables, configs, paths and arguments, with a
message that says what is wrong, where, and what to do. Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

from collections.abc import Iterable

# An error line names a few offending ids, never thousands: enough to find the rows.
MAX_IDS_SHOWN = 5


class UserError(Exception):
    """A problem in the user's input (file, table, config, path, argument), not in the code."""


def few_ids(ids: Iterable[object]) -> str:
    """The first few ids of a list and how many more, for an error message."""
    values = list(ids)
    shown = ", ".join(str(v) for v in values[:MAX_IDS_SHOWN])
    more = f" (+{len(values) - MAX_IDS_SHOWN} more)" if len(values) > MAX_IDS_SHOWN else ""
    return shown + more
