"""Image files found by a task's pattern (`train_images/{id}.jpg`, `train/**/{id}.png`).

A pattern names one file per id; `**` stands for any sub-folders (none included), `*` for any
part of one name. The folder below the pattern's fixed prefix is walked once, so a hundred
thousand ids cost one directory listing, not a hundred thousand globs.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

from kaggle_style.errors import UserError, few_ids

ID_FIELD = "{id}"


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """The pattern as a regex over paths relative to DATA (with `/`), `{id}` a named group."""
    out = []
    for part in re.split(r"(\*\*/|\*\*|\*|\{id\})", pattern):
        if part == "**/":
            out.append(r"(?:[^/]+/)*")
        elif part == "**":
            out.append(r".*")
        elif part == "*":
            out.append(r"[^/]*")
        elif part == ID_FIELD:
            out.append(r"(?P<id>[^/]+)")
        else:
            out.append(re.escape(part))
    return re.compile("".join(out) + r"\Z")


def _fixed_folder(pattern: str) -> str:
    """The pattern's leading folders that hold no wildcard: where the walk starts."""
    parts = pattern.split("/")[:-1]
    fixed = []
    for part in parts:
        if "*" in part or ID_FIELD in part:
            break
        fixed.append(part)
    return "/".join(fixed)


def find_images(root: Path, pattern: str, ids: pd.Series, where: str) -> pd.Series:
    """The path (relative to `root`) of each id's file, in the order of `ids`; an id with no
    file, or with two, is one UserError saying how many and a few of them."""
    regex = pattern_regex(pattern)
    start = _fixed_folder(pattern)
    found: dict[str, list[str]] = {}
    base = root / start if start else root
    if base.is_dir():
        for folder, _, names in os.walk(base):
            rel_folder = os.path.relpath(folder, root).replace(os.sep, "/")
            prefix = "" if rel_folder == "." else rel_folder + "/"
            for name in names:
                match = regex.match(prefix + name)
                if match:
                    found.setdefault(match.group("id"), []).append(prefix + name)
    wanted = ids.astype(str)
    missing = [i for i in wanted if i not in found]
    if missing:
        raise UserError(
            f"{root}: {len(missing)} of {len(wanted)} {where} id(s) found no file for pattern "
            f"{pattern!r}, e.g. {few_ids(missing)}; check images.{where}_pattern in the task file"
        )
    twice = [i for i in wanted if len(found[i]) > 1]
    if twice:
        first = sorted(found[twice[0]])
        raise UserError(
            f"{root}: {len(twice)} {where} id(s) match several files for pattern {pattern!r}, "
            f"e.g. {twice[0]} ({first[0]}, {first[1]}); make the pattern name one file per id"
        )
    return pd.Series([found[i][0] for i in wanted], index=ids.index, dtype=object)
