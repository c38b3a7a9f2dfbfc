"""Typed stage configs on pydantic: dataclass defaults < YAML file < `--set` < command line.

Each stage's config is a `@stage_config` pydantic dataclass (unknown keys forbidden) whose field
types carry the checks (`Count`, `Literal[...]`) under this project's coercion (`_config_type`);
only checks across fields live in `__post_init__`. A failure, in code or in `resolve_config`, is
one ConfigError naming the key, and the layer (file, `--set`, `command line`) that set it.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import pydantic.dataclasses
from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
)

from kaggle_style import files
from kaggle_style.errors import UserError, check_name

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T")
Config = TypeVar("Config", bound="DataclassInstance")  # a @stage_config class

# every stage config's settings; a field's docstring is its description (`--help`, reference)
CONFIG = ConfigDict(extra="forbid", validate_default=True, use_attribute_docstrings=True)
STAGE_CONFIGS: list[type] = []  # every `@stage_config` class imported so far (for the tests)
Count = Annotated[int, Field(ge=1)]
Whole = Annotated[int, Field(ge=0)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class ConfigError(UserError, ValueError):
    """A config key or value that the stage does not accept; `key` names the field when known."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


def _checked_name(value: str) -> str:
    try:
        return check_name(value, "")
    except UserError as err:
        raise ConfigError(str(err)) from None


# A name that becomes one folder or file (a run, a study, a recipe of a set): `errors.check_name`.
Name = Annotated[str, AfterValidator(_checked_name)]


@typing.overload
def stage_config(cls: type[T], /) -> type[T]: ...
@typing.overload
def stage_config(cls: None = None, /, *, frozen: bool = False) -> Callable[[type[T]], type[T]]: ...
@typing.dataclass_transform(field_specifiers=(dataclasses.field, Field))
def stage_config(
    cls: type[T] | None = None, /, *, frozen: bool = False
) -> type[T] | Callable[[type[T]], type[T]]:
    """Make `cls` a stage config: a pydantic dataclass under `CONFIG`, its fields' types read
    through `_config_type`, and a failed check one ConfigError naming the key.

    Typed as a `dataclass_transform` so that type checkers see each config's fields in its
    constructor, as they do for `pydantic.dataclasses.dataclass` itself."""

    def make(cls: type[T]) -> type[T]:
        hints = typing.get_type_hints(cls, include_extras=True)
        cls.__annotations__ = {k: _config_type(hints[k]) for k in cls.__annotations__}
        made = pydantic.dataclasses.dataclass(cls, config=CONFIG, frozen=frozen)
        validate = made.__init__

        @functools.wraps(validate)
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            try:
                validate(self, *args, **kwargs)
            except ValidationError as err:
                raise _config_error(err, made, kwargs) from None

        made.__init__ = __init__  # type: ignore[method-assign]  # wraps pydantic's own __init__
        STAGE_CONFIGS.append(made)
        return typing.cast("type[T]", made)

    return make if cls is None else make(cls)


def add_config_arguments(
    parser: argparse.ArgumentParser,
    flags: tuple[str, str] = ("--config", "--set"),
    dests: tuple[str, str] = ("config", "overrides"),
    helps: tuple[str, str] = (
        "YAML file whose keys override the defaults",
        "override config keys (values parsed as YAML), e.g. --set lr=3e-4 epochs=2",
    ),
    **file_options: Any,
) -> None:
    """`--config FILE` and `--set KEY=VALUE ...`, the two layers above the defaults; other
    `flags` serve a command's second config (`--slurm-config`, `--slurm`), `file_options` the
    file flag's argparse options (a default file, a repeatable recipe)."""
    parser.add_argument(flags[0], type=Path, dest=dests[0], help=helps[0], **file_options)
    parser.add_argument(
        flags[1], dest=dests[1], nargs="+", default=[], metavar="KEY=VALUE", help=helps[1]
    )


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"override '{item}' is not KEY=VALUE")
        try:  # an empty value is null
            out[key] = files.parse_yaml(value, "--set", ConfigError)
        except ConfigError as err:
            raise ConfigError(
                f"--set {item}: the value is not valid YAML "
                f"({files.yaml_reason(err.__cause__)}); quote it",
                key,
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


def resolve_config(
    cls: type[Config],
    path: str | Path | None = None,
    overrides: Mapping[str, Any] | Sequence[str] = (),
    *,
    cli: Mapping[str, Any] | None = None,
    **cli_values: Any,
) -> Config:
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
    names = {f.name for f in dataclasses.fields(cls)}
    merged: dict[str, Any] = {}
    source_of: dict[str, str] = {}
    for source, layer in layers:
        if set(layer) - names:
            raise ConfigError(f"{source}: {_unknown(cls, set(layer) - names)}")
        merged.update(layer)
        source_of.update(dict.fromkeys(layer, source))
    try:
        return cls(**merged)
    except ConfigError as err:
        if err.key in source_of:  # say which layer set the bad value
            raise ConfigError(f"{source_of[err.key]}: {err}", err.key) from err
        raise


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


_UNIONS = (typing.Union, types.UnionType)


def _unknown(cls: type, keys: set[str]) -> str:
    known = sorted(f.name for f in dataclasses.fields(cls))
    return (
        f"unknown key(s) {', '.join(sorted(keys))} for {cls.__name__}; "
        f"known keys: {', '.join(known)}"
    )


def _config_error(err: ValidationError, cls: type, given: Mapping[str, Any]) -> ConfigError:
    """pydantic's errors as one ConfigError: a check's own, unknown keys, or the first bad key."""
    errors = err.errors()
    if not errors[0]["loc"]:  # raised in `__post_init__`: a ConfigError names its key
        cause = errors[0].get("ctx", {}).get("error", errors[0]["msg"])
        return cause if isinstance(cause, ConfigError) else ConfigError(str(cause))
    unknown = {str(e["loc"][0]) for e in errors if e["type"] == "unexpected_keyword_argument"}
    if unknown:
        return ConfigError(_unknown(cls, unknown), min(unknown))
    head = errors[0]["loc"][0]
    key = [f.name for f in dataclasses.fields(cls)][head] if isinstance(head, int) else str(head)
    hint = typing.get_type_hints(cls, include_extras=True)[key]
    mine = [{**e, "loc": e["loc"][1:]} for e in errors if e["loc"][:1] == (head,)]
    return _field_error(key, given[key] if key in given else mine[0]["input"], hint, mine)


def _field_error(key: str, value: Any, hint: Any, errors: list[Any]) -> ConfigError:
    """One line for the errors of field `key` (their `loc` inside the field): out of range,
    not one of the choices, or not of the type; a list's item is named by its index."""
    first = errors[0]
    index = [p for p in first["loc"] if isinstance(p, int)]
    where = key + "".join(f"[{i}]" for i in index)
    if index:
        hint, value = _item_type(hint), first["input"]
    kinds = {e["type"] for e in errors}
    if isinstance(first.get("ctx", {}).get("error"), ConfigError):  # a field type's own check
        return ConfigError(f"{where}: {first['ctx']['error']}", key)
    if "missing" in kinds:
        return ConfigError(f"{key}: missing; this key has no default, so give it a value", key)
    if "too_short" in kinds:
        least = next(e["ctx"]["min_length"] for e in errors if e["type"] == "too_short")
        return ConfigError(f"{where}: {value!r} needs at least {least} value(s)", key)
    bounds = _bounds(hint)
    if bounds and kinds & {
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
        "finite_number",
    }:
        optional = type(None) in _members(hint)
        if float in _members(hint) and type(value) is int:  # `lr=0` is the number 0.0
            value = float(value)
        return ConfigError(
            f"{where}: {value!r} is out of range; it must be {_span(*bounds)}"
            + (" (or null)" if optional else ""),
            key,
        )
    choices = _choices(hint)
    if choices and not isinstance(value, bool | list | dict):
        shown = ", ".join(str(c).lower() if isinstance(c, bool) else repr(c) for c in choices)
        return ConfigError(f"{where}: {value!r} is not one of {shown}", key)
    return ConfigError(
        f"{where}: expected {_expected(hint)}, got {value!r} ({first['msg'].lower()})", key
    )


def _config_type(hint: Any) -> Any:
    """A field's type with this project's rules: lax (YAML writes `3e-4` as a string, and
    `name: 2024` is the name "2024") but booleans strict (`1` is not `true`, `true` is not a
    number), and a single value accepted for a list."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        return typing.Annotated[(_config_type(args[0]), *args[1:])]
    if hint is bool:
        return StrictBool
    if hint in (int, float):
        return typing.Annotated[hint, BeforeValidator(_no_bool)]
    if hint is str:
        return typing.Annotated[
            str,
            BeforeValidator(
                lambda v: str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
            ),
        ]
    if origin in _UNIONS:
        return typing.Union[tuple(_config_type(a) for a in args)]  # noqa: UP007 (built)
    if origin in (list, tuple):
        inner = _config_type(args[0]) if args else Any
        kind = (  # list[inner] or tuple[inner, ...], built from a value at run time
            types.GenericAlias(list, inner)
            if origin is list
            else types.GenericAlias(tuple, (inner, ...))
        )
        return typing.Annotated[
            kind, BeforeValidator(lambda v: v if isinstance(v, list | tuple) else [v])
        ]
    return hint


def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    return value


def _members(hint: Any) -> tuple[Any, ...]:
    """The types a field allows, through `Annotated` and unions."""
    if typing.get_origin(hint) is typing.Annotated:
        return _members(typing.get_args(hint)[0])
    if typing.get_origin(hint) in _UNIONS:
        return tuple(m for a in typing.get_args(hint) for m in _members(a))
    return (hint,)


def _item_type(hint: Any) -> Any:
    """The item type of a list (or tuple) field, through `Annotated` and `| None`."""
    kinds = [m for m in _members(hint) if typing.get_origin(m) in (list, tuple)]
    return typing.get_args(kinds[0])[0] if kinds else hint


def _bounds(hint: Any) -> tuple[float | None, float | None, bool, bool] | None:
    """(low, high, low_open, high_open) of an `Annotated[..., Field(ge=...)]` type, if any."""
    got = {
        name: getattr(c, name)
        for info in _metadata(hint)
        for c in getattr(info, "metadata", [])
        for name in ("ge", "gt", "le", "lt")
        if getattr(c, name, None) is not None
    }
    if not got:
        return None
    return got.get("gt", got.get("ge")), got.get("lt", got.get("le")), "gt" in got, "lt" in got


def _metadata(hint: Any) -> tuple[Any, ...]:
    """What `Annotated` attaches to a field's type, through unions (not into a list's items)."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) is typing.Annotated:
        return (*args[1:], *_metadata(args[0]))
    return tuple(m for a in args if typing.get_origin(hint) in _UNIONS for m in _metadata(a))


def _span(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{'greater than' if low_open else 'at least'} {low:g}"
    return f"{'less than' if high_open else 'at most'} {high:g}"


def _choices(hint: Any) -> tuple[Any, ...]:
    """The `Literal` choices a field's type allows, and true, false if also a boolean."""
    members = _members(hint)
    literals = tuple(
        c for m in members if typing.get_origin(m) is typing.Literal for c in typing.get_args(m)
    )
    return ((True, False) if literals and bool in members else ()) + literals


def _expected(hint: Any) -> str:
    names = {
        bool: "true or false",
        int: "an integer",
        float: "a number",
        str: "a string",
        type(None): "null",
        dict: "a mapping",
        list: "a list",
        tuple: "a list",
    }
    words = (
        names.get(typing.get_origin(m) or m) or getattr(m, "__name__", str(m))
        for m in _members(hint)
    )
    return " or ".join(dict.fromkeys(w.replace("typing.", "") for w in words))
