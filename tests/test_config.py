"""kaggle_style.config: configs layer (defaults < YAML < --set < flags) and reject unknown keys,
bad YAML and out-of-range values, naming the layer and the key."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal

import pytest
from pydantic import Field

from kaggle_style.config import (
    ConfigError,
    config_dict,
    plain,
    read_yaml,
    resolve_config,
    stage_config,
)


@stage_config
class _Cfg:
    lr: float = 1e-3
    epochs: int = 3
    name: str = "a"
    pretrained: bool | str = False
    folds: list[int] | None = None


def test_config_layers_defaults_yaml_set_cli(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("lr: 0.01\nepochs: 5\nname: from-yaml\n")
    cfg = resolve_config(_Cfg, path, ["epochs=7", "pretrained=weights/x.safetensors"], name="cli")
    assert cfg == _Cfg(lr=0.01, epochs=7, name="cli", pretrained="weights/x.safetensors")
    assert resolve_config(_Cfg, overrides=["folds=[0, 2]"]).folds == [0, 2]


@pytest.mark.parametrize("bad", ["lrr=1", "epochs=2.5", "epochs=many", "pretrained=[1]"])
def test_config_rejects_unknown_keys_and_wrong_types(bad: str) -> None:
    with pytest.raises(ConfigError):
        resolve_config(_Cfg, overrides=[bad])


def test_malformed_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("lr: 0.01\nepochs: [3\nname: x\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: line \d+, column \d+: malformed YAML") as err:
        read_yaml(path)
    assert "<unicode string>" not in str(err.value) and "\n" not in str(err.value)
    path.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: not UTF-8"):
        read_yaml(path)
    with pytest.raises(ConfigError, match="is a folder"):
        read_yaml(tmp_path)
    with pytest.raises(ConfigError, match="--set epochs=\\[1: the value is not valid YAML"):
        resolve_config(_Cfg, overrides=["epochs=[1"])


@stage_config
class _Ranged:
    """Ranges and choices as field types, the way every stage config states them."""

    lr: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 1e-3
    batch_size: Annotated[int, Field(ge=1)] = 8
    clip: Annotated[float, Field(ge=0, lt=1 / 8, allow_inf_nan=False)] = 0.0
    limit: Annotated[int, Field(ge=1)] | None = None
    view: Literal["full", "crop"] = "full"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("lr=.nan", "lr: nan is out of range; it must be greater than 0"),
        ("lr=.inf", "lr: inf is out of range"),
        ("lr=0", "lr: 0.0 is out of range; it must be greater than 0"),
        ("batch_size=0", "batch_size: 0 is out of range; it must be at least 1"),
        ("clip=0.5", r"clip: 0.5 is out of range; it must be in \[0, 0.125\)"),
        ("clip=0.125", "clip: 0.125 is out of range"),
        ("limit=0", r"limit: 0 is out of range; it must be at least 1 \(or null\)"),
        ("view=ful", "view: 'ful' is not one of 'full', 'crop'"),
    ],
)
def test_range_checks_name_the_layer_and_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match="^--set: " + message):
        resolve_config(_Ranged, overrides=[override])


def test_range_checks_pass_at_the_bounds_and_catch_direct_construction(tmp_path: Path) -> None:
    cfg = resolve_config(_Ranged, overrides=["lr=1e-9", "batch_size=1", "clip=0.1249", "limit=1"])
    assert (cfg.lr, cfg.batch_size, cfg.clip, cfg.limit) == (1e-9, 1, 0.1249, 1)
    with pytest.raises(ConfigError, match="view: 'crops' is not one of"):
        _Ranged(view="crops")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="lr: nan"):
        _Ranged(lr=math.nan)
    path = tmp_path / "r.yaml"
    path.write_text("batch_size: -8\n")
    with pytest.raises(ConfigError, match=f"^{path}: batch_size: -8 is out of range"):
        resolve_config(_Ranged, path)


def test_plain_makes_yaml_safe_values() -> None:
    value = {"p": Path("a/b"), "t": (1, Path("c")), "n": [{"q": Path("d")}]}
    assert plain(value) == {"p": "a/b", "t": [1, "c"], "n": [{"q": "d"}]}
    assert config_dict(_Cfg(folds=[1])) == {
        "lr": 1e-3,
        "epochs": 3,
        "name": "a",
        "pretrained": False,
        "folds": [1],
    }


def test_unknown_yaml_key_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("learning_rate: 0.1\n")
    with pytest.raises(ConfigError, match=r"c\.yaml.*learning_rate"):
        resolve_config(_Cfg, path)
