"""Command-line flags made from a stage config's fields: a field is written once, as its flag.

`add_config_flags(parser, Cls)` adds `--field-name` for each field of a `@stage_config` class:
a bool as `--x/--no-x`, a list as `--x A B` (or the flag repeated), a `Literal` as choices, a
number with its range, a mapping as YAML. Its help is the field's docstring with the type's range
and the default. Every flag defaults to None, so `flag_values(args, Cls)` holds only what the user
typed: the command-line layer of `resolve_config` (defaults < `--config` < `--set` < flags).

Not jsonargparse (LightningCLI's library): it brings its own config-file layering and multi-line
errors, where this project keeps `resolve_config`'s layers and one-line errors naming layer and key.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from kaggle_style import files
from kaggle_style.config import (
    ConfigError,
    _bounds,
    _choices,
    _expected,
    _item_type,
    _members,
    _span,
    add_config_arguments,
    resolve_config,
)
from kaggle_style.task import DEFAULT_FOLDS, DEFAULT_TASK, TASKS_DIR

__all__ = [
    "add_config_arguments",
    "add_config_flags",
    "config_from_args",
    "field_description",
    "field_reference",
    "flag_of",
    "flag_values",
]


def flag_of(name: str) -> str:
    """The flag of a config key: `n_splits` -> `--n-splits`."""
    return "--" + name.replace("_", "-")


def add_config_flags(
    parser: argparse.ArgumentParser,
    cls: type,
    *,
    only: Collection[str] | None = None,
    skip: Collection[str] = (),
    positional: Collection[str] = (),
    aliases: Mapping[str, str] | None = None,
    switches: Mapping[str, tuple[str, Any, str]] | None = None,
    exclusive: Collection[Collection[str]] = (),
    required: bool = False,
) -> None:
    """A flag per field of `cls` (those in `only`, less `skip`); each action's `config_class`
    is `cls` and its `dest` the field (what the reference pages read).

    `positional`: fields taken as positional arguments (a list: zero or more); `aliases`: an
    older flag name kept for a field (`{"folds": "--fold"}`); `switches`: a flag that sets a field
    to a constant (`{"--quiet": ("progress", False, "no progress bars")}`); `exclusive`: groups
    of fields of which at most one may be given; `required`: fields without a default are
    required flags (a config read from the command line only, with no `--config` layer)."""
    aliases = aliases or {}
    groups: dict[str, Any] = {}
    for group in exclusive:  # one argparse group per listed set of fields
        shared = parser.add_mutually_exclusive_group()
        groups.update(dict.fromkeys(group, shared))
    hints = typing.get_type_hints(cls, include_extras=True)
    for item in dataclasses.fields(cls):
        name = item.name
        if (only is not None and name not in only) or name in skip:
            continue
        options = _argument_options(hints[name])
        options["help"] = _help(cls, item, hints[name])
        if name in positional:
            options.pop("action", None)
            action = parser.add_argument(name, **{**options, "nargs": "*", "default": None})
        else:
            no_default = (
                item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING
            )
            names = [flag_of(name)] + ([aliases[name]] if name in aliases else [])
            action = groups.get(name, parser).add_argument(
                *names, dest=name, default=None, required=required and no_default, **options
            )
        action.config_class = cls  # type: ignore[attr-defined]
    for flag, (name, value, help_) in (switches or {}).items():
        action = parser.add_argument(flag, dest=name, action="store_const", const=value, help=help_)
        action.config_class = cls  # type: ignore[attr-defined]


def flag_values(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The fields of `cls` the user gave on the command line (None and an empty list: not given)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in vars(args).items() if k in names and v is not None and v != []}


def config_from_args(cls: type, args: argparse.Namespace) -> Any:
    """`cls` resolved from a command's `--config`, `--set` and flags."""
    return resolve_config(
        cls,
        getattr(args, "config", None),
        getattr(args, "overrides", ()),
        cli=flag_values(args, cls),
    )


def field_description(cls: type, name: str) -> str:
    """A field's one-line description: its docstring in the config class."""
    info = getattr(cls, "__pydantic_fields__", {}).get(name)
    return " ".join((getattr(info, "description", None) or "").split())


def _argument_options(hint: Any) -> dict[str, Any]:
    """argparse's `type`, `choices`, `nargs` and `action` for a field's type."""
    kinds = [m for m in _members(hint) if m is not type(None)]
    origins = {typing.get_origin(m) or m for m in kinds}
    choices = _choices(hint)
    if origins == {bool}:
        return {"action": argparse.BooleanOptionalAction}
    if choices and all(isinstance(c, str) for c in choices):
        return {"choices": choices}
    if choices:  # a Literal or a bool: `true`, `false` and the words, read as YAML
        return {
            "type": _yaml_value,
            "choices": choices,
            "metavar": "{" + ",".join(_shown(c) for c in choices) + "}",
        }
    if origins <= {list, tuple}:
        return {"nargs": "+", "action": "extend", **_argument_options(_item_type(hint))}
    if origins == {dict}:
        return {"type": _yaml_mapping, "metavar": "YAML"}
    if len(origins) == 1 and next(iter(origins)) in (int, float):
        kind = next(iter(origins))
        return {"type": kind, "metavar": "N" if kind is int else "X"}
    if origins <= {str, Path}:
        return {}
    return {"type": _yaml_value, "metavar": "VALUE"}


def _help(cls: type, item: dataclasses.Field[Any], hint: Any) -> str:
    """The field's description, then its range and default, as `--help` shows them."""
    entry = _entry(cls, item, hint)
    notes = "; ".join(n for n in (entry.range, f"default {entry.default}") if n)
    if entry.default == "required":
        notes = notes.replace("default required", "required")
    text = f"{entry.description} ({notes})" if entry.description else notes
    return text.replace("%", "%%")


@dataclasses.dataclass(frozen=True)
class FieldEntry:
    """One config key as the reference pages show it (all of it read from the field)."""

    key: str
    flag: str  # its flag by default (a command may also take it as a positional or older name)
    kind: str  # "an integer", "one of 'a', 'b'", "a list of a number", ...
    default: str  # as written in YAML; "required" when the field has none
    range: str  # "at least 1", "in [0, 1]" or ""
    description: str


def field_reference(cls: type) -> list[FieldEntry]:
    """Every field of a stage config: key, flag, type, default, range, description."""
    hints = typing.get_type_hints(cls, include_extras=True)
    return [_entry(cls, item, hints[item.name]) for item in dataclasses.fields(cls)]


def _entry(cls: type, item: dataclasses.Field[Any], hint: Any) -> FieldEntry:
    if item.default is not dataclasses.MISSING:
        default = _shown(item.default)
    elif item.default_factory is not dataclasses.MISSING:
        default = _shown(item.default_factory())
    else:
        default = "required"
    bounds = _bounds(_item_type(hint)) or _bounds(hint)
    choices = _choices(hint)
    if choices:
        kind = "one of " + ", ".join(_shown(c) for c in choices)
    elif _item_type(hint) is not hint:
        kind = f"a list, each {_expected(_item_type(hint))}"
    else:
        kind = _expected(hint)
    if choices and type(None) in _members(hint):
        kind += " or null"
    return FieldEntry(
        key=item.name,
        flag=flag_of(item.name),
        kind=kind,
        default=default,
        range=_span(*bounds) if bounds else "",
        description=field_description(cls, item.name),
    )


def _shown(value: Any) -> str:
    """A default as one writes it in YAML: true, null, [1, 2], a path as text."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_shown(v)}" for k, v in value.items()) + "}"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _yaml_value(text: str) -> Any:
    """A flag's value read as YAML (`true`, `3`, `auto`), as `--set` reads it."""
    return files.parse_yaml(text, "flag", ConfigError)


def _yaml_mapping(text: str) -> dict[str, Any]:
    """A mapping flag's value, `{key: value, ...}` in YAML."""
    value = _yaml_value(text)
    if not isinstance(value, dict):
        raise ValueError(f"{text!r} is not a YAML mapping")
    return value


_yaml_value.__name__ = "YAML"  # argparse names the type in "invalid YAML value: ..."
_yaml_mapping.__name__ = "YAML mapping"


def add_task_option(parser: argparse.ArgumentParser) -> None:
    """The one `--task` of the stages whose options are not all config fields (the others get it
    from their config's `task` field)."""
    parser.add_argument(
        "--task",
        help=f"task file or name ({TASKS_DIR}/NAME.yaml); default: the task `folds` recorded "
        f"beside {DEFAULT_FOLDS}, else {DEFAULT_TASK}",
    )
