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


# Path separators on any system: a name holding one would be a path.
NAME_SEPARATORS = ("/", "\\")


def name_problem(name: str) -> str:
    """Why `name` cannot be one folder or file inside its parent, or '' when it can."""
    if not name.strip():
        return "is empty" if not name else "is only spaces"
    if name.strip() in (".", ".."):
        return "is a path step, not a name"
    if any(sep in name for sep in NAME_SEPARATORS):
        return "holds a path separator"
    if any(ord(c) < 32 for c in name):
        return "holds a line break or control character"
    return ""


def check_name(name: str, what: str = "name") -> str:
    """A name a user gives (run, study, set, recipe, site folder) that becomes one folder or file
    inside its parent: refused when empty, only spaces, `.` or `..`, holding a path separator or
    a control character. Without those no name can land outside, or on, its parent folder."""
    problem = name_problem(name)
    if problem:
        raise UserError(
            f"{what + ' ' if what else ''}{name!r} {problem}; give a plain name (letters, "
            "digits, '-', '_', '.') that becomes one folder or file"
        )
    return name
