"""Every shipped config resolves to exactly what its file says, a bad value in a copy of it is
refused naming the file and the key, and (slow) each backbone runs one training step."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from kaggle_style.config import ConfigError, config_dict, plain, read_yaml, resolve_config
from kaggle_style.ensemble.run import EnsembleConfig
from kaggle_style.training.config import TrainConfig

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
ENSEMBLE_CONFIGS = sorted(CONFIGS.glob("ensemble*.yaml"))
TRAIN_CONFIGS = sorted(set(CONFIGS.glob("*.yaml")) - set(ENSEMBLE_CONFIGS))


def _same(resolved: Any, written: Any) -> bool:
    """A resolved value equals the file's (YAML reads `3e-4` as text; floats compare as floats)."""
    if isinstance(resolved, float) and not isinstance(written, bool):
        return math.isclose(resolved, float(written), rel_tol=1e-12)
    return resolved == plain(written)


def _assert_resolves_to_file(cls: type, path: Path) -> Any:
    written = read_yaml(path)
    resolved = config_dict(resolve_config(cls, path))
    defaults = config_dict(cls())
    for key, value in resolved.items():
        expected = written.get(key, defaults[key])
        assert _same(value, expected), f"{path.name}: {key} resolved to {value!r}, not {expected!r}"
    return resolved


def test_configs_folder_holds_the_recipes_the_readme_names() -> None:
    names = {p.stem for p in TRAIN_CONFIGS}
    expected = {
        "demo-crop",
        "demo-full",
        "tiny-cpu",
        "resnet50",
        "efficientnetv2",
        "densenet161",
        "vgg19",
        "inception_v3",
        "vit_base",
        "convnext_large_384",
        "eva02_large_448",
        "convnext_tiny",
    }
    assert expected <= names, sorted(expected - names)
    assert {p.stem for p in ENSEMBLE_CONFIGS} >= {"ensemble-demo"}


@pytest.mark.parametrize("path", TRAIN_CONFIGS, ids=lambda p: p.stem)
def test_train_config_resolves_to_its_file_and_the_defaults(path: Path) -> None:
    import timm

    resolved = _assert_resolves_to_file(TrainConfig, path)
    assert timm.is_model(resolved["backbone"]), f"{path.name}: unknown timm backbone"


def test_the_demo_and_smoke_recipes_hold_the_values_the_readme_quotes() -> None:
    crop = resolve_config(TrainConfig, CONFIGS / "demo-crop.yaml")
    assert (crop.backbone, crop.pretrained, crop.image_size, crop.view, crop.epochs) == (
        "resnet18",
        False,
        48,
        "crop",
        5,
    )
    full = resolve_config(TrainConfig, CONFIGS / "demo-full.yaml")
    assert (full.backbone, full.image_size, full.view, full.epochs) == ("resnet18", 48, "full", 3)
    tiny = resolve_config(TrainConfig, CONFIGS / "tiny-cpu.yaml")
    assert (tiny.backbone, tiny.image_size, tiny.epochs, tiny.num_workers) == (
        "test_resnet",
        48,
        1,
        0,
    )


BAD_TRAIN_VALUES = [
    ("epochs", 0),
    ("batch_size", 0),
    ("grad_accum", 0),
    ("image_size", -8),
    ("lr", float("nan")),
    ("lr", 0.0),
    ("view", "ful"),
    ("augment", "strongest"),
    ("class_weights", "balance"),
    ("learning_rate", 0.1),  # not a key
]


@pytest.mark.parametrize("path", TRAIN_CONFIGS, ids=lambda p: p.stem)
@pytest.mark.parametrize(("key", "value"), BAD_TRAIN_VALUES, ids=lambda v: str(v))
def test_a_bad_value_in_a_copy_is_refused_naming_file_and_key(
    path: Path, key: str, value: Any, tmp_path: Path
) -> None:
    copy = tmp_path / path.name
    copy.write_text(yaml.safe_dump({**read_yaml(path), key: value}))
    resolve_config(TrainConfig, path)  # the original is fine
    with pytest.raises(ConfigError, match=f"^{re.escape(str(copy))}: .*{key}"):
        resolve_config(TrainConfig, copy)


@pytest.mark.parametrize("path", ENSEMBLE_CONFIGS, ids=lambda p: p.stem)
def test_ensemble_config_resolves_to_its_file_and_refuses_a_bad_choice(
    path: Path, tmp_path: Path
) -> None:
    resolved = _assert_resolves_to_file(EnsembleConfig, path)
    choice = next(k for k in ("space", "stacking", "site_adapt") if k in resolved)
    copy = tmp_path / path.name
    copy.write_text(yaml.safe_dump({**read_yaml(path), choice: "sometimes"}))
    with pytest.raises(ConfigError, match=f"^{re.escape(str(copy))}: {choice}: 'sometimes'"):
        resolve_config(EnsembleConfig, copy)


@pytest.mark.slow
@pytest.mark.parametrize("path", TRAIN_CONFIGS, ids=lambda p: p.stem)
def test_config_backbone_trains_one_step_at_a_tiny_size(path: Path) -> None:
    import torch

    from kaggle_style.models import create_model
    from kaggle_style.task import CONSERVISION_CLASSES as CLASSES
    from kaggle_style.training.recipe import soft_cross_entropy

    cfg = resolve_config(TrainConfig, path)
    size = 75 if "inception" in cfg.backbone else 64
    model = create_model(cfg.backbone, len(CLASSES), pretrained=False, image_size=size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    images = torch.randn(2, 3, size, size)
    targets = torch.nn.functional.one_hot(torch.tensor([0, 4]), len(CLASSES)).float()
    loss = soft_cross_entropy(model(images), targets, torch.ones(len(CLASSES)))
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)


@pytest.mark.parametrize(
    ("child", "differs"),
    [
        ("convnext_tiny_crop", {"view", "ema_decay"}),
        ("convnext_tiny_full", {"view", "ema_decay", "image_size", "search_space"}),
        ("efficientnetv2_crop", {"view", "ema_decay"}),
        ("efficientnetv2_full", {"view", "ema_decay", "search_space"}),
    ],
)
def test_a_composed_recipe_is_its_base_but_the_keys_it_lists(child: str, differs: set[str]):
    text = yaml.safe_load((CONFIGS / f"{child}.yaml").read_text())
    base = config_dict(resolve_config(TrainConfig, CONFIGS / text["base"]))
    resolved = config_dict(resolve_config(TrainConfig, CONFIGS / f"{child}.yaml"))
    assert {k for k in resolved if resolved[k] != base[k]} == differs
    if "search_space" in differs:  # `null` drops the base's dimension; new ones are added
        assert "crop_threshold" in base["search_space"]
        assert "crop_threshold" not in resolved["search_space"]
        assert set(resolved["search_space"]) - {"image_size"} < set(base["search_space"])


def test_a_recipe_whose_bases_come_back_to_it_is_refused(tmp_path: Path):
    (tmp_path / "a.yaml").write_text("base: b.yaml\nlr: 0.1\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ConfigError, match=r"b\.yaml: base: a\.yaml comes back to itself"):
        resolve_config(TrainConfig, tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("base: missing.yaml\n")
    with pytest.raises(ConfigError, match=r"missing\.yaml: config file not found"):
        resolve_config(TrainConfig, tmp_path / "c.yaml")


def test_alias_bombs_and_deep_nesting_are_one_line_malformed_yaml(tmp_path: Path):
    bomb = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    bomb += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 12)]
    deep = "lr: " + "[" * 10_000 + "]" * 10_000
    for name, text in (("bomb.yaml", "\n".join(bomb)), ("deep.yaml", deep)):
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(
            ConfigError,
            match=rf"^{re.escape(str(path))}:( line \d+, column "
            r"\d+:)? malformed YAML \(",
        ) as err:
            resolve_config(TrainConfig, path)
        assert "\n" not in str(err.value)
