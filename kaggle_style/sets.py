"""Model sets by name: `configs/sets/NAME.yaml` lists the recipes to train and the ensemble config.

One file says what `make ... SET=NAME` trains, so the Makefile, the docs and the tests read the
same list. A model is named by its recipe's file stem (`configs/<model>.yaml`), which is also its
run folder name (`runs/<model>/`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kaggle_style.config import ConfigError, Name, resolve_config, stage_config
from kaggle_style.errors import UserError, check_name
from kaggle_style.training.config import TrainConfig

CONFIGS_DIR = "configs"
SETS_DIR = "configs/sets"


class ModelSetError(UserError):
    """A set that names no file, or a file that is missing."""


@stage_config
class ModelSet:
    """What one `configs/sets/NAME.yaml` holds."""

    description: str
    """one line for `make help` and `make sets`"""
    models: list[Name]
    """recipe names: configs/<model>.yaml"""
    ensemble: str
    """the ensemble config, relative to the project root"""
    gpu_time: str = ""
    """expected GPU time, and whether it was measured or estimated"""

    def __post_init__(self) -> None:
        """What no field type says: a set trains something, once each, and fits `make help`."""
        if not self.models:
            raise ConfigError("models: a set needs at least one model config name", "models")
        if len(set(self.models)) != len(self.models):
            raise ConfigError(f"models: a model is listed twice in {self.models}", "models")
        if "\n" in self.description.strip():
            raise ConfigError("description: one line, please", "description")


@dataclass
class SetFiles:
    """A set with every path it names, checked to exist."""

    spec: ModelSet
    path: Path
    model_configs: dict[str, Path] = field(default_factory=dict)
    ensemble_config: Path = Path()

    @property
    def name(self) -> str:
        return self.path.stem


def set_path(name: str, root: str | Path = ".") -> Path:
    """`configs/sets/NAME.yaml` under `root`, or NAME itself when it is a YAML file."""
    given = Path(name)
    if given.suffix in (".yaml", ".yml") and given.is_file():
        return given
    check_name(name, "set")
    return Path(root) / SETS_DIR / f"{name}.yaml"


def available_sets(root: str | Path = ".") -> list[str]:
    return sorted(p.stem for p in (Path(root) / SETS_DIR).glob("*.yaml"))


def load_set(name: str, root: str | Path = ".") -> SetFiles:
    """Read and check a set: known keys only, and every config it names on disk."""
    path = set_path(name, root)
    if not path.is_file():
        known = ", ".join(available_sets(root)) or "none"
        raise ModelSetError(f"no model set {name!r}: {path} does not exist; known sets: {known}")
    spec = resolve_config(ModelSet, path)
    ensemble = Path(root) / spec.ensemble
    if not ensemble.is_file():
        raise ModelSetError(
            f"{path}: ensemble: {ensemble} does not exist; give the path of an "
            "ensemble config relative to the project root"
        )
    configs = check_models(spec.models, root, f"{path}: models")
    return SetFiles(spec, path, configs, ensemble)


def check_models(
    models: list[str], root: str | Path = ".", where: str = "MODELS"
) -> dict[str, Path]:
    """Every named recipe exists and resolves: a broken one fails here, before any training."""
    configs = {m: Path(root) / CONFIGS_DIR / f"{check_name(m, where)}.yaml" for m in models}
    missing = [str(p) for p in configs.values() if not p.is_file()]
    if missing:
        raise ModelSetError(
            f"{where} names config(s) that do not exist: {', '.join(missing)}; "
            "add them or fix the names"
        )
    for config in configs.values():
        resolve_config(TrainConfig, config)
    return configs


def field_value(files: SetFiles, key: str) -> str:
    """One field as a single line for the shell: models space-separated, paths as written."""
    spec = files.spec
    values = {
        "models": " ".join(spec.models),
        "ensemble": spec.ensemble,
        "description": spec.description,
        "gpu_time": spec.gpu_time,
    }
    if key not in values:
        raise ModelSetError(f"--field {key!r}: must be one of {', '.join(values)}")
    return values[key]
