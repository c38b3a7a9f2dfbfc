"""Names a user gives (run, study, set, recipe, pseudo-label source, site folder, ensemble folder)
become one folder or file inside a parent: empty, only spaces, `.`/`..`, a path separator or a
control character is refused in one line before anything is written."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import typing
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import kaggle_style
from kaggle_style.cli import main
from kaggle_style.config import STAGE_CONFIGS, ConfigError, Name
from kaggle_style.errors import UserError, check_name
from kaggle_style.sets import check_models, load_set
from kaggle_style.training.config import TrainConfig

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "tiny-cpu.yaml"
HOSTILE = ["", "   ", ".", "..", "a/b", "../runs", "a\\b", "two\nlines", "nul\0"]
# Field names that hold a user's name wherever a stage config has them: each must be a `Name`.
# (`task` is a file or a name, read by kaggle_style.task.load_task, which refuses either in one
# line: not a Name)
NAME_FIELDS = {"name", "study", "models", "set", "site", "recipe", "run"}
# The smallest valid values of configs with required fields (every other field has a default).
REQUIRED = {
    "TuneConfig": {"study": "s"},
    "ExportConfig": {"study": "s", "out": "best.yaml"},
    "ModelSet": {"description": "d", "models": ["a"], "ensemble": "configs/ensemble.yaml"},
}


def _one_line(capsys: pytest.CaptureFixture[str], *words: str) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def _all_stage_configs() -> list[type]:
    """Every `@stage_config` class of the package (each module imported, so each registers)."""
    for module in pkgutil.walk_packages(kaggle_style.__path__, "kaggle_style."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    return list(STAGE_CONFIGS)


def _holds_name(hint: Any) -> bool:
    """Whether a field's type carries `Name`'s check, alone, optional or as a list's items."""
    check = typing.get_args(Name)[1].func
    metadata = hint.__metadata__ if typing.get_origin(hint) is typing.Annotated else ()
    if any(getattr(m, "func", None) is check for m in metadata):
        return True
    return any(_holds_name(arg) for arg in typing.get_args(hint))


def _name_fields() -> list[tuple[type, str, bool]]:
    """(config class, field, whether it holds a list) for every field typed `Name`."""
    found = []
    for cls in _all_stage_configs():
        hints = typing.get_type_hints(cls, include_extras=True)
        for field in dataclasses.fields(cls):
            if _holds_name(hints[field.name]):
                found.append((cls, field.name, "list" in str(hints[field.name])))
    return found


def test_every_field_called_like_a_name_is_typed_name() -> None:
    """A new config field `name:`, `study:`, `task:` ... cannot forget the check."""
    typed = {(cls.__name__, key) for cls, key, _ in _name_fields()}
    for cls in _all_stage_configs():
        for field in dataclasses.fields(cls):
            if field.name in NAME_FIELDS or field.name.endswith("_name"):
                assert (cls.__name__, field.name) in typed, f"{cls.__name__}.{field.name}"
    assert {("TrainConfig", "name"), ("TuneConfig", "study"), ("ModelSet", "models")} <= typed


@pytest.mark.parametrize("bad", HOSTILE, ids=repr)
def test_every_config_field_holding_a_name_refuses_hostile_names(bad: str) -> None:
    fields = _name_fields()
    assert len(fields) >= 5
    for cls, key, is_list in fields:
        values = {**REQUIRED.get(cls.__name__, {}), key: [bad] if is_list else bad}
        with pytest.raises(ConfigError) as err:
            cls(**values)
        where = f"{key}[0]" if is_list else key
        assert str(err.value).startswith(f"{where}: {bad!r} "), (cls.__name__, str(err.value))
        assert err.value.key == key and "give a plain name" in str(err.value)


def test_plain_names_pass_the_check() -> None:
    for good in ("model", "demo-crop", "convnext_L.384", "2024", "run 1", "ünïcode"):
        assert check_name(good) == good
    assert TrainConfig(name=2024).name == "2024"  # YAML's number is the name "2024"


def test_train_with_an_empty_name_is_one_line_and_writes_nothing(
    tiny_data: Path, tiny_folds: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "other").mkdir()  # a run beside which an empty name would write
    for bad in ("", "..", "a/b"):
        argv = ["train", "--config", str(TINY), "--name", bad, "--data", str(tiny_data)]
        assert main([*argv, "--folds-file", str(tiny_folds), "--runs-dir", str(runs)]) == 2
        _one_line(capsys, f"name: {bad!r}", "give a plain name")
        assert [p.name for p in runs.iterdir()] == ["other"]


@pytest.mark.parametrize("bad", ["", "..", "../configs/x", "."])
def test_set_and_recipe_names_are_refused(bad: str) -> None:
    with pytest.raises(UserError, match="give a plain name"):
        load_set(bad, REPO)
    with pytest.raises(UserError, match="give a plain name"):
        check_models(["fast", bad], REPO)


def test_model_set_check_models_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["model-set", "--root", str(REPO), "--check-models", "../configs/tiny-cpu"]) == 2
    _one_line(capsys, "holds a path separator")


@pytest.mark.parametrize("bad", ["", ".", ".."])
def test_a_pseudo_label_source_name_outside_runs_dir_is_refused(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"pseudo_labels\.from: .*give a plain name"):
        TrainConfig(pseudo_labels={"from": bad})
    assert TrainConfig(pseudo_labels={"from": "elsewhere/run"}).pseudo_labels is not None


def test_tune_study_names_are_refused_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["tune", "--study", "../x", "--config", str(TINY), "--n-trials", "1"]
    assert main(argv) == 2
    _one_line(capsys, "study: '../x' holds a path separator")


def test_a_site_folder_named_only_spaces_is_refused_in_predict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = tmp_path / "images"
    (images / "   ").mkdir(parents=True)
    Image.new("RGB", (64, 48)).save(images / "   " / "a.jpg")
    out = tmp_path / "out" / "p.csv"
    argv = ["predict", "--images", str(images), "--run", str(tmp_path / "run"), "--out", str(out)]
    assert main([*argv, "--site-from-folder", "--no-detector", "--quiet"]) == 2
    _one_line(capsys, "site folder in", "'   ' is only spaces")
    assert not out.parent.exists()


OUTPUTS = {  # a stage and the arguments it needs before its output is checked
    "ensemble": ["ensemble", "{runs}/a", "--data", "{tmp}/data", "--out"],
    "folds": ["folds", "--data", "{tmp}/data", "--out"],
    "meta": ["meta", "--data", "{tmp}/data", "--out"],
    "crop": ["crop", "--detections", "{tmp}/d.json", "--images", "{tmp}/images", "--out"],
    "show-detections": [
        "show-detections",
        "--detections",
        "{tmp}/d.json",
        "--images",
        "{tmp}/images",
        "--out",
    ],
    "predict": ["predict", "--images", "{tmp}/images", "--run", "{runs}/a", "--out"],
    "export": ["export", "--run", "{runs}/a", "--data", "{tmp}/data", "--out"],
    "report": ["report", "{runs}/a", "--data", "{tmp}/data", "--out"],
}


@pytest.mark.parametrize("out", [".", "sub/.."])
@pytest.mark.parametrize("stage", list(OUTPUTS))
def test_an_output_that_names_no_file_or_folder_of_its_own_is_refused_before_any_work(
    stage: str,
    out: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`.` or `sub/..` as an output would be the working folder itself: the final rename fails
    half-way (a temporary left behind) or a folder replaces the one that holds the inputs."""
    (tmp_path / "runs" / "a").mkdir(parents=True)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    argv = [a.format(runs=tmp_path / "runs", tmp=tmp_path) for a in OUTPUTS[stage]]
    assert main([*argv, out]) == 2
    _one_line(capsys, f"{out}:", "is a path step, not a name")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "runs", "work"]
