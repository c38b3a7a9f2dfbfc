"""The search space is data, not code: each `search_space:` key of a train config names a
TrainConfig field and how to sample it, so tuning a new backbone needs only a YAML file."""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import optuna

from kaggle_style.config import ConfigError, config_dict, resolve_config
from kaggle_style.training.config import TrainConfig

Kind = Literal["float", "int", "categorical"]
# Fields that name a run or the tuning itself: sampling them would make no sense.
UNTUNABLE = frozenset({"name", "search_space", "folds", "runs_dir", "resume"})
SPEC_KEYS: dict[str, frozenset[str]] = {
    "float": frozenset({"type", "low", "high", "log", "step"}),
    "int": frozenset({"type", "low", "high", "log", "step"}),
    "categorical": frozenset({"type", "choices"}),
}


@dataclass(frozen=True)
class Param:
    """One `search_space` entry: how to sample one TrainConfig field."""

    name: str
    kind: Kind
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: optuna.trial.BaseTrial) -> Any:
        if self.kind == "float":
            return trial.suggest_float(self.name, self.low, self.high, log=self.log, step=self.step)
        if self.kind == "int":
            return trial.suggest_int(
                self.name, int(self.low), int(self.high), log=self.log, step=int(self.step or 1)
            )
        return trial.suggest_categorical(self.name, list(self.choices))

    def contains(self, value: Any) -> bool:
        if self.kind == "categorical":
            return any(
                (value == c and type(value) is type(c)) or _same_number(value, c)
                for c in self.choices
            )
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        return self.low <= value <= self.high

    def unit(self, value: Any) -> float:
        """Where `value` lies in the space, 0..1 (log-scaled where sampled so)."""
        if self.kind == "categorical":
            index = next(i for i, c in enumerate(self.choices) if c == value)
            return index / max(1, len(self.choices) - 1)
        if self.high == self.low:
            return 0.0
        if self.log:
            return math.log(value / self.low) / math.log(self.high / self.low)
        return (value - self.low) / (self.high - self.low)

    def ends(self) -> list[Any]:
        """The values at the edges of the space (every choice of a categorical)."""
        if self.kind == "categorical":
            return list(self.choices)
        if self.kind == "int":
            return [int(self.low), int(self.high)]
        return [self.low, self.high]


def _same_number(a: Any, b: Any) -> bool:
    numbers = (int, float)
    return (
        isinstance(a, numbers)
        and isinstance(b, numbers)
        and not isinstance(a, bool)
        and not isinstance(b, bool)
        and a == b
    )


def parse_search_space(
    space: Mapping[str, Any], base: TrainConfig | None = None
) -> dict[str, Param]:
    """Check every entry against TrainConfig before any trial runs, so a typo fails at once.

    Each edge of each range is checked on `base` (default: TrainConfig's defaults), so a value
    that only fits with other fields (warm-up epochs within epochs) is checked where it runs.
    """
    if not space:
        raise ConfigError(
            "the config has no search_space: nothing to tune (see configs/"
            "convnext_tiny.yaml for the format)"
        )
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    hints = typing.get_type_hints(TrainConfig)
    params: dict[str, Param] = {}
    for name, spec in space.items():
        where = f"search_space.{name}"
        if name not in known:
            raise ConfigError(
                f"{where}: not a TrainConfig field; known fields: "
                f"{', '.join(sorted(known - UNTUNABLE))}"
            )
        if name in UNTUNABLE:
            raise ConfigError(f"{where}: this field names the run or the study; it cannot be tuned")
        if not isinstance(spec, Mapping) or spec.get("type") not in SPEC_KEYS:
            raise ConfigError(
                f"{where}: expected a mapping with type: float, int or categorical, got {spec!r}"
            )
        kind = spec["type"]
        extra = sorted(set(spec) - SPEC_KEYS[kind])
        if extra:
            raise ConfigError(
                f"{where}: unknown key(s) {', '.join(extra)} for type {kind} "
                f"(allowed: {', '.join(sorted(SPEC_KEYS[kind]))})"
            )
        params[name] = _param(name, kind, spec, where)
        _check_field_type(params[name], hints[name], where, base)
    return params


def _param(name: str, kind: Kind, spec: Mapping[str, Any], where: str) -> Param:
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}: categorical needs a non-empty list of choices")
        if any(not isinstance(c, None | bool | int | float | str) for c in choices):
            raise ConfigError(f"{where}: choices must be numbers, strings, booleans or null")
        return Param(name, kind, choices=tuple(choices))
    if "low" not in spec or "high" not in spec:
        raise ConfigError(f"{where}: type {kind} needs low and high")
    low, high, log, step = spec["low"], spec["high"], spec.get("log", False), spec.get("step")
    numbers = [v for v in (low, high, step) if v is not None]
    if any(isinstance(v, bool) or not isinstance(v, int | float) for v in numbers):
        raise ConfigError(f"{where}: low, high and step must be numbers")
    if kind == "int" and any(int(v) != v for v in numbers):
        raise ConfigError(f"{where}: an int range needs whole numbers")
    if not isinstance(log, bool):
        raise ConfigError(f"{where}: log must be true or false")
    if low > high or (log and low <= 0) or (log and step is not None and kind == "float"):
        raise ConfigError(
            f"{where}: need low <= high, low > 0 for log, and no step with a log float"
        )
    return Param(name, kind, float(low), float(high), log, step)


def _check_field_type(param: Param, hint: Any, where: str, base: TrainConfig | None) -> None:
    """Sampled values must fit the field: an int field cannot take a float range."""
    args = set(typing.get_args(hint)) or {hint}
    if param.kind == "float" and int in args and float not in args:
        raise ConfigError(f"{where}: the field is an integer; use type: int or categorical")
    start = config_dict(base) if base is not None else {}
    for value in param.ends():
        try:
            resolve_config(TrainConfig, overrides={**start, param.name: value})
        except ConfigError as err:
            raise ConfigError(f"{where}: the value {value!r} does not fit: {err}") from err


def default_params(cfg: TrainConfig, space: Mapping[str, Param]) -> dict[str, Any]:
    """The config's own values of the tuned keys: the study's first trial."""
    params = {name: getattr(cfg, name) for name in space}
    for name, value in params.items():
        if not space[name].contains(value):
            raise ConfigError(
                f"search_space.{name}: the config's value {value!r} lies outside the space; the "
                "first trial runs the config's own values, so widen the space or change the value"
            )
        if space[name].kind == "int":
            params[name] = int(value)
    return params


def sample(space: Mapping[str, Param], trial: optuna.trial.BaseTrial) -> dict[str, Any]:
    """One value per tuned field, in the space's order (Optuna's `FixedTrial` works too)."""
    return {name: param.suggest(trial) for name, param in space.items()}


def trial_config(cfg: TrainConfig, params: Mapping[str, Any], name: str) -> TrainConfig:
    """The base config with a trial's values and its own run name (values checked as usual)."""
    return resolve_config(TrainConfig, overrides={**config_dict(cfg), **params, "name": name})


def epoch_stride(cfg: TrainConfig, space: Mapping[str, Param]) -> int:
    """Steps per fold in `trial.report`: the most epochs any trial can run, so that a step means
    the same (fold, epoch) in every trial and the pruner compares like with like."""
    epochs = space.get("epochs")
    most = [cfg.epochs]
    if epochs is not None:
        most.append(int(max(epochs.ends())))
    return max(most)
