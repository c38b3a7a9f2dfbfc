"""Bad tables fail early with a clear message; `check-data` reports a folder's layout; configs
layer, reject unknown keys, bad YAML and out-of-range values; metrics match scikit-learn."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import pandas as pd
import pytest
from pydantic import Field
from sklearn.metrics import log_loss as sk_log_loss

from kaggle_style.config import (
    ConfigError,
    config_dict,
    plain,
    read_yaml,
    resolve_config,
    stage_config,
)
from kaggle_style.data.layout import check_layout
from kaggle_style.data.tables import TableError, escapes, load_competition_data
from kaggle_style.metrics import (
    expected_calibration_error,
    log_loss,
    prior_log_loss,
    reliability_bins,
    score,
)
from kaggle_style.task import CONSERVISION_CLASSES as CLASSES
from kaggle_style.task import SUBMISSION_FORMAT, TEST_FEATURES, TRAIN_FEATURES, TRAIN_LABELS

KS = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "kaggle-style"


@pytest.fixture
def data_copy(tiny_data: Path, tmp_path: Path) -> Path:
    out = tmp_path / "data"
    shutil.copytree(tiny_data, out, ignore=shutil.ignore_patterns("*.jpg"))
    return out


def _edit(path: Path, change) -> None:
    frame = pd.read_csv(path, dtype={"id": str})
    change(frame).to_csv(path, index=False)


@pytest.mark.parametrize(
    ("file", "change", "message"),
    [
        (TRAIN_FEATURES, lambda f: f.rename(columns={"site": "sight"}), "missing column.*site"),
        (TRAIN_FEATURES, lambda f: pd.concat([f, f.iloc[:2]]), "duplicate ids"),
        (TRAIN_FEATURES, lambda f: f.assign(site=[None, *f.site[1:]]), "'site' is missing"),
        (TRAIN_FEATURES, lambda f: f.iloc[1:], "ids without a row in train_features|label ids"),
        (TRAIN_LABELS, lambda f: f.iloc[1:], "ids without a row in train_labels"),
        (TRAIN_LABELS, lambda f: f.assign(hog=1.0), "not one-hot"),
        (TRAIN_LABELS, lambda f: f.assign(bird="x"), "non-numeric"),
        (TRAIN_LABELS, lambda f: f.drop(columns=["leopard"]), "missing column.*leopard"),
    ],
)
def test_bad_tables_fail_naming_file_column_and_ids(data_copy: Path, file, change, message) -> None:
    _edit(data_copy / file, change)
    with pytest.raises(TableError, match=message) as err:
        load_competition_data(data_copy)
    assert str(data_copy) in str(err.value)


def test_empty_table_is_an_error(data_copy: Path) -> None:
    (data_copy / TRAIN_LABELS).write_text("")
    with pytest.raises(TableError, match="empty"):
        load_competition_data(data_copy)


def test_non_utf8_table_names_the_file(data_copy: Path) -> None:
    path = data_copy / TRAIN_FEATURES
    path.write_bytes(path.read_bytes().replace(b"S0", b"S\xe90", 1))
    with pytest.raises(TableError, match=r"train_features\.csv: not UTF-8 text .*save") as err:
        load_competition_data(data_copy)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("filepath", ["../../etc/passwd", "/etc/passwd", "train_features/../.."])
def test_filepath_outside_the_data_folder_is_refused(data_copy: Path, filepath: str) -> None:
    _edit(data_copy / TRAIN_FEATURES, lambda f: f.assign(filepath=[filepath, *f.filepath[1:]]))
    with pytest.raises(TableError, match=r"outside the data folder.*allow_outside_data"):
        load_competition_data(data_copy)
    assert len(load_competition_data(data_copy, allow_outside_data=True).train) > 0


def test_escapes_is_lexical() -> None:
    assert not escapes("train_features/a.jpg")
    assert not escapes("train_features/../test_features/a.jpg")  # inside, caught as shared below
    assert escapes("../a.jpg") and escapes("/abs/a.jpg") and escapes("a/../../b.jpg")
    assert not escapes("..a.jpg")


@pytest.mark.parametrize("absolute", [False, True])
def test_same_file_in_train_and_test_is_refused(data_copy: Path, absolute: bool) -> None:
    test = pd.read_csv(data_copy / TEST_FEATURES, dtype=str)
    target = test.filepath[0]
    # an absolute path to a test image needs the option, and is still refused
    target = str((data_copy / target).resolve()) if absolute else "train_features/../" + target
    _edit(data_copy / TRAIN_FEATURES, lambda f: f.assign(filepath=[target, *f.filepath[1:]]))
    with pytest.raises(TableError, match="also training images") as err:
        load_competition_data(data_copy, allow_outside_data=True)
    assert test.id[0] in str(err.value)


def test_submission_format_must_list_the_test_ids(data_copy: Path) -> None:
    _edit(data_copy / SUBMISSION_FORMAT, lambda f: f.iloc[1:])
    with pytest.raises(TableError, match=r"submission_format\.csv: ids differ.*1 test id"):
        load_competition_data(data_copy)


def test_check_data_reports_each_file_and_the_images(tiny_data: Path) -> None:
    report = check_layout(tiny_data)
    assert report.problems == []
    text = report.format()
    n_train = len(pd.read_csv(tiny_data / TRAIN_FEATURES))
    n_test = len(pd.read_csv(tiny_data / TEST_FEATURES))
    assert f"{n_train} of {n_train} image files found" in text
    assert f"{n_test} of {n_test} image files found" in text
    assert text.endswith("layout ok")


def test_check_data_names_missing_files_images_and_tables(data_copy: Path, tiny_data: Path):
    (data_copy / SUBMISSION_FORMAT).unlink()
    report = check_layout(data_copy)  # data_copy holds no images
    assert report.problems[0] == f"{SUBMISSION_FORMAT} is missing"
    assert any(p.startswith("train_features/: no image files (0 of") for p in report.problems)
    shutil.copytree(tiny_data / "train_features", data_copy / "train_features", dirs_exist_ok=True)
    next((data_copy / "train_features").iterdir()).unlink()
    report = check_layout(data_copy)
    assert any("train_features/: 1 of" in p and "missing" in p for p in report.problems)
    csv_only = check_layout(data_copy, check_images=False)
    assert csv_only.problems == [f"{SUBMISSION_FORMAT} is missing"]


def _check_data_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(KS), "check-data", *args],
        capture_output=True,
        text=True,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )


def test_check_data_cli_on_the_real_csvs_without_images(shared_data: Path) -> None:
    folder = shared_data / "conservision"
    result = _check_data_cli(str(folder))
    assert result.returncode == 2, result.stderr
    assert "16,488 rows, 148 sites" in result.stdout
    assert "4,464 rows, 51 sites, 0 of them also in train_features.csv" in result.stdout
    assert "0 of 16,488 image files found (no train_features/ folder)" in result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("kaggle-style check-data: error: "), lines
    assert "no image files" in lines[0] and "--csv-only" in lines[0]
    csv_only = _check_data_cli(str(folder), "--csv-only")
    assert csv_only.returncode == 0 and csv_only.stderr == ""
    assert "images not checked (--csv-only)" in csv_only.stdout


def test_check_data_cli_on_a_fake_layout(tmp_path: Path) -> None:
    (tmp_path / TRAIN_FEATURES).write_text("id,filepath\nZJ0,train_features/ZJ0.jpg\n")
    result = _check_data_cli(str(tmp_path), "--csv-only")
    assert result.returncode == 2
    assert "missing column(s) site" in result.stdout
    assert re.search(r"train_labels\.csv +BAD +missing", result.stdout), result.stdout
    line = result.stderr.strip()
    assert line.startswith(f"kaggle-style check-data: error: {tmp_path}: train_features.csv: ")
    assert "3 more problem(s) listed above" in line
    result = _check_data_cli(str(tmp_path / "nowhere"))
    assert result.returncode == 2 and "folder not found" in result.stderr


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


def test_log_loss_equals_sklearn() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 8, 500)
    probs = rng.dirichlet(np.ones(8) * 0.3, 500)
    probs[0] = np.eye(8)[(y[0] + 1) % 8]  # a confident miss exercises the clipping
    expected = sk_log_loss(y, probs, labels=list(range(8)))
    assert abs(log_loss(y, probs) - expected) < 1e-9


def test_prior_log_loss_and_score_fields() -> None:
    y = np.array([0, 0, 1, 2, 2, 2, 7, 4])
    prior = np.bincount(y, minlength=8) / len(y)
    assert (
        abs(prior_log_loss(y, 8) - sk_log_loss(y, np.tile(prior, (8, 1)), labels=range(8))) < 1e-9
    )
    s = score(y, np.eye(8)[y], CLASSES)
    assert s["accuracy"] == 1.0 and s["f1_macro"] == 1.0
    assert s["per_class_accuracy"][CLASSES[3]] is None  # no support
    assert np.trace(np.array(s["confusion_matrix"])) == len(y)


def test_calibration_error_zero_when_calibrated_and_large_when_overconfident() -> None:
    y = np.array([0, 1] * 50)
    assert expected_calibration_error(y, np.eye(8)[y]) < 1e-12
    wrong = np.eye(8)[(y + 1) % 8]
    assert expected_calibration_error(y, wrong) > 0.99


def test_reliability_bins_match_a_hand_count() -> None:
    # confidences 0.9 (right), 0.9 (wrong), 0.5 (right), 15 bins: two non-empty bins
    probs = np.zeros((3, 8))
    probs[0, 0], probs[1, 0], probs[2, 1] = 0.9, 0.9, 0.5
    probs[:, 7] = 1 - probs.max(axis=1)
    share, conf, acc = reliability_bins(np.array([0, 3, 1]), probs, n_bins=15)
    np.testing.assert_allclose(share, [1 / 3, 2 / 3])
    np.testing.assert_allclose(conf, [0.5, 0.9])
    np.testing.assert_allclose(acc, [1.0, 0.5])
    ece = expected_calibration_error(np.array([0, 3, 1]), probs, n_bins=15)
    assert ece == pytest.approx(1 / 3 * 0.5 + 2 / 3 * 0.4, abs=1e-15)
