"""Typed stage configs: dataclass defaults < YAML file < command line; unknown keys are errors.

Every stage defines one dataclass. `resolve_config` merges the three layers and checks each
value against the field's type, so a typo in a YAML key or a `--set` fails before any work; the
dataclass's `__post_init__` checks ranges with `check_range` (and choices with `check_choices`
when built directly), and the error names the layer (file, `--set`, flag) that set the key.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from kaggle_style import files
from kaggle_style.errors import UserError

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


def cli_values(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The parsed flags that name fields of `cls` (the command-line layer of `resolve_config`)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in vars(args).items() if k in names}


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


def read_yaml(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A YAML mapping from a user's file; any failure is a ConfigError naming file and line.

    `base: OTHER.yaml` (beside the file) composes recipes: the file's keys override the base's,
    mappings (`search_space`) merge key by key, and `null` there drops a base's key.
    """
    path = Path(path)
    data = files.read_yaml(path, ConfigError, "config file", "check the --config path") or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must be a mapping of keys to values")
    if "base" not in data:
        return data
    base = data.pop("base")
    if not isinstance(base, str):
        raise ConfigError(f"{path}: base: {base!r} is not a file name; name a YAML file beside it")
    base_path = path.parent / base
    if base_path.resolve() in (*_seen, path.resolve()):
        raise ConfigError(f"{path}: base: {base} comes back to itself; break the circle")
    return _merged(read_yaml(base_path, (*_seen, path.resolve())), data)


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            inner = {**base[key], **value}
            out[key] = {k: v for k, v in inner.items() if v is not None}
        else:
            out[key] = value
    return out


def _yaml_problem(err: yaml.YAMLError) -> str:
    """PyYAML's reason without its multi-line context (the CLI prints one line)."""
    problem = getattr(err, "problem", None) or str(err)
    context = getattr(err, "context", None)
    return " ".join(f"{context + ', ' if context else ''}{problem}".split())


def resolve_config(
    cls: type[T],
    path: str | Path | None = None,
    overrides: Mapping[str, Any] | Sequence[str] = (),
    *,
    cli: Mapping[str, Any] | None = None,
    **cli_values: Any,
) -> T:
    """Defaults < YAML (`path`) < `overrides` < explicit `cli` and `cli_values` (those not None).

    `cli` carries flags whose names clash with this function's own (a stage's `overrides`)."""
    cli_values = {**(cli or {}), **cli_values}
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


def check_fields(cfg: Any) -> None:
    """For `__post_init__`: every field holds a value of its type, within its `Field`
    constraints (`Annotated[int, Field(ge=1)]`), so a config built in code fails as early as
    one read from YAML, with the same one-line message."""
    hints = typing.get_type_hints(type(cfg), include_extras=True)
    for f in dataclasses.fields(cfg):
        setattr(cfg, f.name, _coerce(getattr(cfg, f.name), hints[f.name], f.name, f.name))


def check_choices(cfg: Any) -> None:
    """For `__post_init__`: every `Literal`-typed field holds one of its choices, so a config
    built in code (not through `resolve_config`) fails as early as one read from YAML."""
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        if _choices(hints[f.name]):
            _coerce(getattr(cfg, f.name), hints[f.name], f.name)


_UNIONS = (typing.Union, types.UnionType)


def _checked(cls: type, layer: Mapping[str, Any], source: str) -> dict[str, Any]:
    hints = typing.get_type_hints(cls, include_extras=True)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(layer) - names)
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) {', '.join(unknown)} for {cls.__name__}; "
            f"known keys: {', '.join(sorted(names))}"
        )
    return {key: _coerce(value, hints[key], f"{source}: {key}", key)
            for key, value in layer.items()}


def _coerce(value: Any, hint: Any, where: str, key: str | None = None) -> Any:
    """`value` validated as `hint` by pydantic; a failure is one line saying what fits."""
    from pydantic import ValidationError

    try:
        return _adapter(hint).validate_python(value)
    except ValidationError as err:
        kinds = {e["type"] for e in err.errors()}
        bounds = _bounds(hint)
        if bounds and kinds & _RANGE_ERRORS:
            optional = type(None) in typing.get_args(hint)
            raise ConfigError(f"{where}: {value!r} is out of range; it must be {_span(*bounds)}"
                              + (" (or null)" if optional else ""), key) from None
        choices = _choices(hint)
        if choices and not isinstance(value, bool | list | dict):
            raise ConfigError(f"{where}: {value!r} is not one of "
                              f"{', '.join(map(repr, choices))}") from None
        raise ConfigError(f"{where}: expected {_expected(hint)}, got {value!r} "
                          f"({err.errors()[0]['msg'].lower()})") from None


@functools.cache
def _adapter(hint: Any):
    """pydantic's validator for a field's type, lax (YAML writes `3e-4` as a string) but with
    booleans strict (`1` is not `true`) and a single value accepted for a list."""
    from pydantic import TypeAdapter

    return TypeAdapter(_config_type(hint))


def _config_type(hint: Any) -> Any:
    from pydantic import BeforeValidator, StrictBool

    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        return typing.Annotated[(_config_type(args[0]), *args[1:])]
    if hint is bool:
        return StrictBool
    if hint in (int, float):  # `true` is not a number
        return typing.Annotated[hint, BeforeValidator(_no_bool)]
    if hint is str:  # `name: 2024` is the name "2024"
        return typing.Annotated[str, BeforeValidator(
            lambda v: str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v)]
    if origin in _UNIONS:
        return typing.Union[tuple(_config_type(a) for a in args)]  # noqa: UP007 (built)
    if origin in (list, tuple):
        inner = _config_type(args[0]) if args else Any
        return typing.Annotated[list[inner], BeforeValidator(
            lambda v: v if isinstance(v, list | tuple) else [v])]
    return hint


_RANGE_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal",
                 "finite_number"}


def _bounds(hint: Any) -> tuple[float | None, float | None, bool, bool] | None:
    """(low, high, low_open, high_open) of an `Annotated[..., Field(...)]` type, if any."""
    if typing.get_origin(hint) in _UNIONS:
        return next(filter(None, map(_bounds, typing.get_args(hint))), None)
    if typing.get_origin(hint) is not typing.Annotated:
        return None
    low = high = None
    low_open = high_open = False
    for info in typing.get_args(hint)[1:]:
        for c in getattr(info, "metadata", []):
            for name in ("ge", "gt", "le", "lt"):
                if getattr(c, name, None) is not None:
                    if name[0] == "g":
                        low, low_open = getattr(c, name), name == "gt"
                    else:
                        high, high_open = getattr(c, name), name == "lt"
    return low, high, low_open, high_open


def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    return value


def _choices(hint: Any) -> tuple[Any, ...]:
    """The `Literal` choices a field's type allows (through `X | None`), if any."""
    if typing.get_origin(hint) is typing.Literal:
        return typing.get_args(hint)
    if typing.get_origin(hint) in _UNIONS:
        return tuple(c for a in typing.get_args(hint) for c in _choices(a))
    return ()


def _expected(hint: Any) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if typing.get_origin(hint) is typing.Annotated:
        return _expected(typing.get_args(hint)[0])
    if hint in names:
        return names[hint]
    if typing.get_origin(hint) in (dict, list):
        return "a mapping" if typing.get_origin(hint) is dict else "a list"
    if typing.get_origin(hint) in _UNIONS:
        return " or ".join(_expected(a) if a is not type(None) else "null"
                           for a in typing.get_args(hint))
    return getattr(hint, "__name__", str(hint)).replace("typing.", "")
