"""Bad tables fail early with a clear message; configs layer and reject unknown keys; metrics
match scikit-learn."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss as sk_log_loss

from kaggle_style.config import ConfigError, resolve_config
from kaggle_style.constants import CLASSES, TRAIN_FEATURES, TRAIN_LABELS
from kaggle_style.data.tables import TableError, load_dataset
from kaggle_style.metrics import expected_calibration_error, log_loss, prior_log_loss, score


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
        load_dataset(data_copy)
    assert str(data_copy) in str(err.value)


def test_empty_table_is_an_error(data_copy: Path) -> None:
    (data_copy / TRAIN_LABELS).write_text("")
    with pytest.raises(TableError, match="empty"):
        load_dataset(data_copy)


@dataclass
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
    assert abs(prior_log_loss(y) - sk_log_loss(y, np.tile(prior, (8, 1)), labels=range(8))) < 1e-9
    s = score(y, np.eye(8)[y])
    assert s["accuracy"] == 1.0 and s["f1_macro"] == 1.0
    assert s["per_class_accuracy"][CLASSES[3]] is None  # no support
    assert np.trace(np.array(s["confusion_matrix"])) == len(y)


def test_calibration_error_zero_when_calibrated_and_large_when_overconfident() -> None:
    y = np.array([0, 1] * 50)
    assert expected_calibration_error(y, np.eye(8)[y]) < 1e-12
    wrong = np.eye(8)[(y + 1) % 8]
    assert expected_calibration_error(y, wrong) > 0.99
