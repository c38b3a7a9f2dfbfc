"""Model sets (configs/sets/*.yaml) and the real recipes they name: every set resolves to recipes
that load, every real recipe can be tuned, and the leaderboard set trains the leaderboard models."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import optuna
import pytest
import yaml

from benchmarks.recipe_gpu import TRAIN_IMAGES, VIEWS
from kaggle_style.cli import main
from kaggle_style.config import ConfigError, resolve_config
from kaggle_style.ensemble.run import EnsembleConfig
from kaggle_style.sets import ModelSetError, available_sets, field_value, load_set
from kaggle_style.training.config import TrainConfig
from kaggle_style.tuning.space import default_params, parse_search_space, sample, trial_config

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
# Shipped configs that are not competition recipes: the demo's models and the smoke test's.
NOT_REAL = {"demo-crop", "demo-full", "tiny-cpu"}
REAL_RECIPES = sorted(
    p
    for p in CONFIGS.glob("*.yaml")
    if not p.name.startswith("ensemble")
    and p.stem not in NOT_REAL
    and not p.name.endswith(".best.yaml")  # written by `make tune-export`
)
SETS = available_sets(REPO)


def test_the_three_sets_ship_and_every_recipe_is_in_the_list() -> None:
    assert {"demo", "fast", "leaderboard"} <= set(SETS)
    names = {p.stem for p in REAL_RECIPES}
    assert {
        "eva02_large_448",
        "convnext_large_384",
        "convnext_tiny_crop",
        "convnext_tiny_full",
        "efficientnetv2_crop",
        "efficientnetv2_full",
    } <= names


@pytest.mark.parametrize("name", SETS)
def test_every_set_resolves_to_recipes_and_an_ensemble_config(name: str) -> None:
    files = load_set(name, REPO)
    assert files.spec.description and "\n" not in files.spec.description
    assert files.spec.gpu_time
    for model, path in files.model_configs.items():
        assert path == CONFIGS / f"{model}.yaml"  # the Makefile's runs/%/oof.csv: configs/%.yaml
        cfg = resolve_config(TrainConfig, path)
        assert cfg.epochs >= 1 and cfg.backbone
    resolve_config(EnsembleConfig, files.ensemble_config)  # unknown keys would raise here
    assert field_value(files, "models").split() == files.spec.models


def _views(name: str) -> dict[str, tuple[str, str]]:
    files = load_set(name, REPO)
    return {
        m: (resolve_config(TrainConfig, p).backbone, resolve_config(TrainConfig, p).view)
        for m, p in files.model_configs.items()
    }


def test_leaderboard_trains_eva02_and_convnext_large_on_crops_and_frames_and_no_demo() -> None:
    views = _views("leaderboard")
    backbones = {backbone.split(".")[0]: view for backbone, view in views.values()}
    assert backbones.get("eva02_large_patch14_448") == "crop+full"
    assert backbones.get("convnext_large") == "crop+full"
    demo = load_set("demo", REPO)
    assert not set(views) & set(demo.spec.models)
    assert not any(m.startswith("demo") for m in views)
    assert load_set("leaderboard", REPO).ensemble_config != demo.ensemble_config
    for path in load_set("leaderboard", REPO).model_configs.values():
        cfg = resolve_config(TrainConfig, path)
        assert cfg.pretrained is True and cfg.image_size >= 384 and cfg.ema_decay > 0


def test_fast_set_is_small_backbones_on_crops_and_on_full_frames() -> None:
    views = sorted(_views("fast").values())
    assert views == [
        ("convnext_tiny.fb_in22k_ft_in1k", "crop"),
        ("convnext_tiny.fb_in22k_ft_in1k", "full"),
        ("tf_efficientnetv2_s.in21k_ft_in1k", "crop"),
        ("tf_efficientnetv2_s.in21k_ft_in1k", "full"),
    ]


def test_demo_set_is_what_make_demo_trains() -> None:
    files = load_set("demo", REPO)
    assert files.spec.models == ["demo-crop", "demo-full"]
    assert files.ensemble_config == REPO / "configs" / "ensemble-demo.yaml"


@pytest.mark.parametrize("path", REAL_RECIPES, ids=lambda p: p.stem)
def test_every_real_recipe_can_be_tuned(path: Path) -> None:
    """`make tune CONFIG=configs/<recipe>.yaml` needs a search space whose every sample, and
    each edge of each range, is a valid TrainConfig on this recipe, and which holds the recipe's
    own values (the study's first trial)."""
    cfg = resolve_config(TrainConfig, path)
    space = parse_search_space(cfg.search_space, cfg)
    assert len(space) >= 4, "tune at least the rate, regularisation and augmentation"
    assert default_params(cfg, space) == {k: getattr(cfg, k) for k in space}
    if cfg.view == "full":
        assert "crop_threshold" not in space, "full frames ignore the crop threshold"
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen: dict[str, set] = {name: set() for name in space}
    for number in range(30):
        trial = study.ask()
        values = sample(space, trial)
        tuned = trial_config(cfg, values, f"t{number}")
        for name, value in values.items():
            assert getattr(tuned, name) == value
            seen[name].add(value)
        study.tell(trial, 0.0)
    assert all(len(values) > 1 for values in seen.values()), "every tuned field varies"
    for name, param in space.items():  # the edges, one field at a time
        for end in param.ends():
            fixed = optuna.trial.FixedTrial({**default_params(cfg, space), name: end})
            assert getattr(trial_config(cfg, sample(space, fixed), "edge"), name) == end


def test_set_errors_are_one_line_and_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "configs" / "sets").mkdir(parents=True)
    (tmp_path / "configs" / "ens.yaml").write_text("space: auto\n")
    (tmp_path / "configs" / "a.yaml").write_text("backbone: resnet18\n")
    sets = tmp_path / "configs" / "sets"
    (sets / "typo.yaml").write_text(
        "description: x\nmodels: [a]\nensemble: configs/ens.yaml\nmodel: [a]\n"
    )
    (sets / "gone.yaml").write_text("description: x\nmodels: [a, b]\nensemble: configs/ens.yaml\n")
    (sets / "noens.yaml").write_text("description: x\nmodels: [a]\nensemble: configs/no.yaml\n")
    (sets / "twice.yaml").write_text("description: x\nmodels: [a, a]\nensemble: configs/ens.yaml\n")
    (sets / "bad.yaml").write_text("description: x\nmodels: [a]\nensemble: configs/ens.yaml\n")
    (tmp_path / "configs" / "a.yaml").write_text("backbone: resnet18\nepochs: 0\n")
    cases = {
        "typo": (ConfigError, "unknown key.*model\\b"),
        "gone": (ModelSetError, r"configs/b\.yaml"),
        "noens": (ModelSetError, r"ensemble: .*configs/no\.yaml does not exist"),
        "twice": (ConfigError, "listed twice"),
        "bad": (ConfigError, r"configs/a\.yaml: epochs"),
        "nope": (ModelSetError, "no model set 'nope'.*known sets: bad, gone, noens, twice, typo"),
    }
    for name, (error, message) in cases.items():
        with pytest.raises(error, match=message) as caught:
            load_set(name, tmp_path)
        assert "\n" not in str(caught.value)


def test_cli_prints_a_field_for_the_makefile(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    assert main(["model-set", "leaderboard", "--field", "models"]) == 0
    assert capsys.readouterr().out.split() == load_set("leaderboard", REPO).spec.models
    assert main(["model-set", "fast", "--field", "ensemble"]) == 0
    assert capsys.readouterr().out.strip() == "configs/ensemble-fast.yaml"
    assert main(["model-set", "--list"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == SETS
    assert main(["model-set", "nope"]) == 2
    err = capsys.readouterr().err
    assert "kaggle-style model-set: error: no model set 'nope'" in err and "leaderboard" in err


def _make(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        ["make", "-o", ".venv/.installed", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_make_checks_every_named_model_before_any_work() -> None:
    """`make train MODELS='a missing'` stops at once, naming the missing config, instead of
    running folds, detection and crops first (as `SET=` is checked)."""
    done = _make("-n", "train", "MODELS=demo-crop missing")
    assert done.returncode == 2, done.stdout[-2000:]
    assert "configs/missing.yaml" in done.stderr and "MODELS='demo-crop missing'" in done.stderr
    assert "kaggle-style folds" not in done.stdout  # nothing would have run
    assert _make("-n", "train", "MODELS=demo-crop").returncode == 0


@pytest.mark.slow  # three make calls, each reading the set: about a minute on a busy 2-core VM
def test_a_data_path_with_a_space_works_through_make(tmp_path: Path) -> None:
    from kaggle_style.demo.generator import generate_demo_data

    data = generate_demo_data(
        tmp_path / "my data", seed=0, n_train=40, n_test=16, width=64, height=48
    )
    out = tmp_path / "out"
    planned = _make("-n", "report", f"DATA={data}", f"OUT={out}", "MODELS=demo-crop")
    assert planned.returncode == 0, planned.stderr[-2000:]
    assert (
        f'--data "{data}"' in planned.stdout
        and f'--labels "{data}/train_labels.csv"' in planned.stdout
    )
    done = _make("folds", f"DATA={data}", f"OUT={out}")  # a real stage through make
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert (out / "folds" / "folds.csv").read_text().startswith("id,site,label,fold")


def _recipes(*sets: str) -> dict[str, Path]:
    return {m: p for s in sets for m, p in load_set(s, REPO).model_configs.items()}


def _cited_epochs(path: Path) -> int:
    """The epoch count in a recipe's one comment line that cites its paper."""
    cited = [line for line in path.read_text().splitlines() if line.startswith("# Fine-tuning as")]
    assert len(cited) == 1, f"{path.name}: no one 'Fine-tuning as' line citing its paper"
    found = re.findall(r"(\d+) epochs", cited[0])
    assert found, f"{path.name}: its citation names no epoch count"
    return int(found[-1])


def test_fast_and_leaderboard_recipes_train_their_papers_epochs() -> None:
    """A recipe's `epochs` (its own or its base's) is the count its cited paper fine-tunes for."""
    for name, path in _recipes("fast", "leaderboard").items():
        base = path
        while "# Fine-tuning as" not in base.read_text():
            base = path.parent / yaml.safe_load(base.read_text())["base"]
        assert resolve_config(TrainConfig, path).epochs == _cited_epochs(base), name


def test_each_recipes_ema_leaves_under_one_percent_of_the_starting_weights() -> None:
    """EMA decay is about 1 - 5/steps of the recipe's run on the real folds
    (docs/concepts/configs.md, resnet50.yaml): changing epochs or batch without the decay would
    leave the zero head in the average."""
    for name, path in _recipes("fast", "leaderboard").items():
        cfg = resolve_config(TrainConfig, path)
        steps = TRAIN_IMAGES * VIEWS[cfg.view] * cfg.epochs / (cfg.batch_size * cfg.grad_accum)
        left = cfg.ema_decay**steps
        assert 0.001 < left < 0.01, f"{name}: {left:.4f} of the start left after {steps:.0f} steps"
