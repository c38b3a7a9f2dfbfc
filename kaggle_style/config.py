"""Typed stage configs: dataclass defaults < YAML file < command line; unknown keys are errors.

Every stage defines one dataclass. `resolve_config` merges the three layers and checks each
value against the field's type, so a typo in a YAML key or a `--set` fails before any work; the
dataclass's `__post_init__` checks ranges with `check_range` (and choices with `check_choices`
when built directly), and the error names the layer (file, `--set`, flag) that set the key.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from kaggle_style.errors import UserError
from kaggle_style.io import parse_yaml

T = TypeVar("T")


class ConfigError(UserError, ValueError):
    """A config key or value that the stage does not accept; `key` names the field when known."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """`--config FILE` and `--set KEY=VALUE ...`, the two layers above the defaults."""
    parser.add_argument("--config", type=Path, help="YAML file whose keys override the defaults")
    parser.add_argument(
        "--set",
        dest="overrides",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="override config keys (values parsed as YAML), e.g. --set lr=3e-4 epochs=2",
    )


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override '{item}' is not KEY=VALUE")
        try:
            out[key.strip()] = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError as err:
            raise ConfigError(
                f"--set {item}: the value is not valid YAML ({_yaml_problem(err)}); quote it"
            ) from err
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from a user's file; any failure is a ConfigError naming file and line."""
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a config file" if path.is_dir() else "config file not found"
        raise ConfigError(f"{path}: {what}; check the --config path")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte {err.start}); save it as UTF-8") from err
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the config file ({err.strerror})") from err
    data = parse_yaml(text, str(path), ConfigError) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must be a mapping of keys to values")
    return data


def _yaml_problem(err: yaml.YAMLError) -> str:
    """PyYAML's reason without its multi-line context (the CLI prints one line)."""
    problem = getattr(err, "problem", None) or str(err)
    context = getattr(err, "context", None)
    return " ".join(f"{context + ', ' if context else ''}{problem}".split())


def resolve_config(
    cls: type[T],
    path: str | Path | None = None,
    overrides: Mapping[str, Any] | Sequence[str] = (),
    **cli_values: Any,
) -> T:
    """Defaults < YAML (`path`) < `overrides` < explicit `cli_values` (those not None)."""
    layers: list[tuple[str, Mapping[str, Any]]] = []
    if path is not None:
        layers.append((str(path), read_yaml(path)))
    if overrides:
        items = overrides if isinstance(overrides, Mapping) else parse_overrides(overrides)
        layers.append(("--set", items))
    layers.append(("command line", {k: v for k, v in cli_values.items() if v is not None}))
    merged: dict[str, Any] = {}
    source_of: dict[str, str] = {}
    for source, layer in layers:
        checked = _checked(cls, layer, source)
        merged.update(checked)
        source_of.update(dict.fromkeys(checked, source))
    try:
        return cls(**merged)
    except ConfigError as err:
        key = err.key or _key_named(str(err), source_of)
        if key in source_of:  # say which layer set the bad value
            raise ConfigError(f"{source_of[key]}: {err}", key) from err
        raise


def _key_named(message: str, keys: Mapping[str, Any]) -> str | None:
    """The key a `__post_init__` message starts with (`lr=nan: ...`, `lr: ...`), if any."""
    for key in sorted(keys, key=len, reverse=True):
        if message.startswith(key) and message[len(key):len(key) + 1] in ("=", ":", " "):
            return key
    return None


def plain(value: Any) -> Any:
    """A value as plain YAML/JSON-safe data: paths as strings, tuples as lists, recursively."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def config_dict(cfg: Any) -> dict[str, Any]:
    """The config as plain YAML-safe values (paths as strings)."""
    return {f.name: plain(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}


def check_range(
    cfg: Any,
    name: str,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    allow_none: bool = False,
) -> None:
    """For `__post_init__`: field `name` is a finite number within the bounds (open = strict).

    Checking here, before any work, turns `lr: nan` or `batch_size: 0` into one line naming the
    key instead of a crash deep inside torch or numpy.
    """
    value = getattr(cfg, name)
    if value is None and allow_none:
        return
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        ok = not (too_low or too_high)
    if not ok:
        raise ConfigError(
            f"{name}: {value!r} is out of range; it must be {_span(low, high, low_open, high_open)}"
            + (" (or null)" if allow_none else ""),
            name,
        )


def _span(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if high is None:
        if low is None:
            return "a finite number"
        return f"{'greater than' if low_open else 'at least'} {low:g}"
    if low is None:
        return f"{'less than' if high_open else 'at most'} {high:g}"
    return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def check_choices(cfg: Any) -> None:
    """For `__post_init__`: every `Literal`-typed field holds one of its choices, so a config
    built in code (not through `resolve_config`) fails as early as one read from YAML."""
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        hint = hints[f.name]
        options = typing.get_args(hint) if typing.get_origin(hint) in _UNIONS else (hint,)
        if any(typing.get_origin(o) is typing.Literal for o in options):
            _coerce(getattr(cfg, f.name), hint, f.name)


_UNIONS = (typing.Union, types.UnionType)


def _checked(cls: type, layer: Mapping[str, Any], source: str) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(layer) - names)
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) {', '.join(unknown)} for {cls.__name__}; "
            f"known keys: {', '.join(sorted(names))}"
        )
    return {key: _coerce(value, hints[key], f"{source}: {key}") for key, value in layer.items()}


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if origin in _UNIONS:
        if value is None and type(None) in args:
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, option, where)
            except ConfigError:
                pass
        raise ConfigError(f"{where}: {value!r} fits none of {hint}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            value = [value]
        inner = args[0] if args else Any
        return [_coerce(v, inner, where) for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return int(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            return float(value)
        except ValueError as err:
            raise ConfigError(f"{where}: expected a number, got {value!r}") from err
    if hint is str:
        if isinstance(value, bool | dict | list) or value is None:
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return str(value)
    if hint is Path:
        return Path(value)
    return value
