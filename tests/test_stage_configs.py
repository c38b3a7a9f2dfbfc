"""Every stage config is a pydantic dataclass with unknown keys forbidden; its checks, in code or
through `resolve_config`, are one-line ConfigErrors naming the key (and the layer that set it)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from pydantic.dataclasses import is_pydantic_dataclass

from benchmarks.bench import BenchConfig
from benchmarks.gpu_check import GpuCheckConfig
from benchmarks.real_dry_run import DryRunConfig
from kaggle_style.config import CONFIG, ConfigError, resolve_config
from kaggle_style.data.folds import FoldsConfig
from kaggle_style.demo.generator import DemoDataConfig
from kaggle_style.detect.batch import DetectConfig
from kaggle_style.detect.crops import CropConfig
from kaggle_style.ensemble.config import EnsembleConfig
from kaggle_style.launch.settings import SlurmSettings
from kaggle_style.meta.run import MetaConfig
from kaggle_style.sets import ModelSet
from kaggle_style.training.config import TrainConfig
from kaggle_style.tuning.config import ExportConfig, TuneConfig

STAGE_CONFIGS = [
    TrainConfig,
    EnsembleConfig,
    TuneConfig,
    ExportConfig,
    CropConfig,
    DetectConfig,
    MetaConfig,
    FoldsConfig,
    DemoDataConfig,
    SlurmSettings,
    ModelSet,
    BenchConfig,
    GpuCheckConfig,
    DryRunConfig,
]


@pytest.mark.parametrize("cls", STAGE_CONFIGS, ids=lambda c: c.__name__)
def test_every_stage_config_is_a_pydantic_dataclass_forbidding_unknown_keys(cls: type) -> None:
    assert is_pydantic_dataclass(cls)
    assert cls.__pydantic_config__ == CONFIG and CONFIG["extra"] == "forbid"


def test_a_check_across_fields_names_its_layer_and_key(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("epochs: 2\n")
    with pytest.raises(
        ConfigError,
        match=r"^--set: warmup_epochs: 3\.0 is out of range; it "
        r"must be at most epochs \(2\)$",
    ) as err:
        resolve_config(TrainConfig, path, ["warmup_epochs=3"])
    assert err.value.key == "warmup_epochs"
    path.write_text("augment_on: device\naugment: strong\n")
    with pytest.raises(ConfigError, match=f"^{path}: augment_on: device has no 'strong'") as err:
        resolve_config(TrainConfig, path)
    assert err.value.key == "augment_on"
    with pytest.raises(ConfigError, match=r"^command line: n_test: 3 images cannot fill 4"):
        resolve_config(DemoDataConfig, cli={"n_test": 3})


@pytest.mark.parametrize(
    ("cls", "values", "key", "message"),
    [
        (TrainConfig, {"lr": math.nan}, "lr", "lr: nan is out of range; it must be greater than 0"),
        (
            TrainConfig,
            {"learning_rate": 0.1},
            "learning_rate",
            "unknown key(s) learning_rate for TrainConfig",
        ),
        (TrainConfig, {"epochs": True}, "epochs", "epochs: expected an integer, got True"),
        (
            EnsembleConfig,
            {"sequence_weights": [0.5, 1.5]},
            "sequence_weights",
            "sequence_weights[1]: 1.5 is out of range; it must be in (0, 1]",
        ),
        (
            EnsembleConfig,
            {"site_strengths": []},
            "site_strengths",
            "site_strengths: [] needs at least 1 value(s)",
        ),
        (
            EnsembleConfig,
            {"stacking": "maybe"},
            "stacking",
            "stacking: 'maybe' is not one of true, false, 'auto'",
        ),
        (CropConfig, {"thresholds": [0.1, 2]}, "thresholds", "thresholds[1]: 2.0 is out of range"),
        (DetectConfig, {"conf_threshold": 1.0}, "conf_threshold", "conf_threshold: 1.0 is out of"),
        (TuneConfig, {}, "study", "study: missing"),
        (
            ModelSet,
            {"description": "d", "models": ["a", "a"], "ensemble": "e"},
            "models",
            "models: a model is listed twice",
        ),
    ],
)
def test_a_config_built_in_code_fails_at_once_in_one_line(
    cls: type, values: dict, key: str, message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        cls(**values)
    assert str(err.value).startswith(message) and "\n" not in str(err.value), str(err.value)
    assert err.value.key == key


def test_the_coercion_rules_hold_for_a_config_built_in_code() -> None:
    """YAML's `3e-4` is a string; a name may be a number; a single value is a list; `1` is not
    `true` and `true` is not a number."""
    cfg = TrainConfig(lr="3e-4", name=2024, folds=1)  # type: ignore[arg-type]
    assert (cfg.lr, cfg.name, cfg.folds) == (3e-4, "2024", [1])
    for values in ({"tta_hflip": 1}, {"batch_size": True}, {"pretrained": [1]}):
        with pytest.raises(ConfigError):
            TrainConfig(**values)
    assert EnsembleConfig(site_adapt=False, sequences=True).sequences == "on"  # type: ignore


def test_set_values_are_read_with_the_bounded_yaml_reader() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^--set lr=&a \[\*a\]: the value is not valid YAML "
        r"\(an alias refers to the collection that holds it\)",
    ):
        resolve_config(TrainConfig, overrides=["lr=&a [*a]"])
    with pytest.raises(ConfigError, match=r"--set lr=\[\[\[.*nested deeper than"):
        resolve_config(TrainConfig, overrides=["lr=" + "[" * 200 + "]" * 200])
