"""Ensemble on synthetic OOF data: models of different noise and one over-confident model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.special import softmax

from kaggle_style.cli import main
from kaggle_style.constants import (
    CLASSES,
    CONFIG_FILE,
    ENSEMBLE_FILE,
    FOLD_COL,
    ID_COL,
    METRICS_FILE,
    OOF_FILE,
    TEST_FILE,
)
from kaggle_style.ensemble import (
    EnsembleConfig,
    EnsembleError,
    ensemble,
    fit_blend,
    fit_temperature,
    fit_weights,
)
from kaggle_style.metrics import log_loss
from kaggle_style.predictions import make_frame, read_predictions, write_predictions

K = len(CLASSES)


def _model_probs(y: np.ndarray, noise: float, sharpness: float, rng: np.random.Generator):
    """softmax(sharpness * (signal on the true class + noise)); sharpness > 1 = over-confident."""
    logits = 2.0 * np.eye(K)[y] + noise * rng.normal(size=(len(y), K))
    return softmax(sharpness * logits, axis=1)


@pytest.fixture
def synthetic(tmp_path: Path) -> dict:
    """Three runs (good, noisy, over-confident) over 600 OOF rows in 4 folds, plus labels."""
    rng = np.random.default_rng(0)
    n, n_test = 600, 120
    y = rng.integers(0, K, n)
    y_test = rng.integers(0, K, n_test)
    ids = np.array([f"ZJ{i:06d}" for i in range(n)])
    test_ids = np.array([f"ZT{i:06d}" for i in range(n_test)])
    folds = np.arange(n) % 4
    runs = {}
    for name, noise, sharp in [("good", 1.0, 1.0), ("noisy", 1.6, 1.0), ("over", 1.0, 4.0)]:
        folder = tmp_path / "runs" / name
        write_predictions(folder / OOF_FILE, make_frame(ids, _model_probs(y, noise, sharp, rng),
                                                        folds))
        write_predictions(folder / TEST_FILE,
                          make_frame(test_ids, _model_probs(y_test, noise, sharp, rng)))
        runs[name] = folder
    labels = pd.DataFrame({ID_COL: ids})
    labels[list(CLASSES)] = np.eye(K)[y]
    labels.to_csv(tmp_path / "train_labels.csv", index=False)
    return {"root": tmp_path, "runs": runs, "labels": tmp_path / "train_labels.csv", "y": y,
            "ids": ids, "folds": folds}


def _config(data: dict, names: list[str], out: str, **kw) -> EnsembleConfig:
    return EnsembleConfig(runs=[str(data["runs"][n]) for n in names], labels=str(data["labels"]),
                          out=str(data["root"] / "runs" / out), stacking=False,
                          site_adapt="off", n_starts=3, **kw)


def test_temperature_lowers_overconfident_log_loss():
    rng = np.random.default_rng(1)
    y = rng.integers(0, K, 2000)
    probs = _model_probs(y, 1.0, 4.0, rng)
    t = fit_temperature(np.log(probs), y)
    assert t > 1.5
    assert log_loss(y, softmax(np.log(probs) / t, axis=1)) < log_loss(y, probs) - 0.1


@pytest.mark.parametrize("space", ["prob", "logprob"])
def test_blend_never_worse_than_best_single_model(space: str):
    rng = np.random.default_rng(2)
    y = rng.integers(0, K, 1500)
    models = [_model_probs(y, n, s, rng) for n, s in [(1.0, 1.0), (2.5, 1.0), (1.0, 4.0)]]
    weights = fit_weights(models, y, space, n_starts=3)
    assert np.all(weights >= 0)
    assert weights.sum() == pytest.approx(1.0, abs=1e-12)
    blend = fit_blend(models, y, space, temperature=False, n_starts=3)
    best_single = min(log_loss(y, p) for p in models)
    assert log_loss(y, blend.predict(models)) <= best_single + 1e-9
    # A dominated model (pure noise) gets (almost) no weight.
    noise = [models[0], rng.dirichlet(np.ones(K), len(y))]
    assert fit_weights(noise, y, space, n_starts=3)[1] < 0.05


def test_ensemble_writes_run_contract_and_nested_estimates(synthetic: dict):
    cfg = _config(synthetic, ["good", "noisy", "over"], "ens")
    result = ensemble(cfg)
    out = Path(cfg.out)
    oof = read_predictions(out / OOF_FILE, require_fold=True)
    test = read_predictions(out / TEST_FILE)
    assert list(oof.columns) == [ID_COL, *CLASSES, FOLD_COL]
    assert list(test.columns) == [ID_COL, *CLASSES]
    assert oof[ID_COL].tolist() == synthetic["ids"].tolist()
    assert oof[FOLD_COL].tolist() == synthetic["folds"].tolist()
    assert len(test) == 120

    report = json.loads((out / ENSEMBLE_FILE).read_text())
    weights = np.array(list(report["weights"].values()))
    assert set(report["weights"]) == {"good", "noisy", "over"}
    assert np.all(weights >= 0) and weights.sum() == pytest.approx(1.0)
    assert report["temperature"] > 0
    for key in ("in_sample", "nested"):
        assert report["final"][key]["log_loss"] > 0
    rows = {row["name"]: row for row in report["table"]}
    assert {"good", "noisy", "over"} <= set(rows)
    assert any(name.startswith("equal-weight mean") for name in rows)
    assert any(name.startswith("+ temperature") for name in rows)
    assert all(row["nested"] is not None for row in report["table"])
    assert len(report["nested_fits"]) == 4
    best_single = min(rows[n]["in_sample"]["log_loss"] for n in ("good", "noisy", "over"))
    assert report["final"]["in_sample"]["log_loss"] <= best_single + 1e-9
    assert set(report["space_choice"]["log_loss"]) == {"prob", "logprob"}

    metrics = json.loads((out / METRICS_FILE).read_text())
    assert metrics["overall"]["log_loss"] == pytest.approx(log_loss(synthetic["y"], result.oof))
    assert metrics["nested"]["log_loss"] == pytest.approx(report["final"]["nested"]["log_loss"])
    written = yaml.safe_load((out / CONFIG_FILE).read_text())
    assert written["runs"] == cfg.runs
    assert "git_commit" in written


def test_ensemble_of_an_ensemble(synthetic: dict):
    first = ensemble(_config(synthetic, ["good", "noisy"], "ens1"))
    synthetic["runs"]["ens1"] = synthetic["root"] / "runs" / "ens1"
    second = ensemble(_config(synthetic, ["ens1", "over"], "ens2"))
    assert set(second.report["weights"]) == {"ens1", "over"}
    best = min(first.report["final"]["in_sample"]["log_loss"],
               second.report["table"][1]["in_sample"]["log_loss"])
    assert second.report["final"]["in_sample"]["log_loss"] <= best + 1e-9


def test_single_run_is_temperature_scaling(synthetic: dict):
    result = ensemble(_config(synthetic, ["over"], "over_ts"))
    report = result.report
    assert report["weights"] == {"over": 1.0}
    assert report["temperature"] > 1.5
    model = report["table"][0]["in_sample"]["log_loss"]
    assert report["final"]["in_sample"]["log_loss"] < model
    assert report["final"]["nested"]["log_loss"] < model


def test_mismatched_ids_name_the_run_and_ids(synthetic: dict):
    path = synthetic["runs"]["noisy"] / OOF_FILE
    frame = read_predictions(path, require_fold=True)
    write_predictions(path, frame.drop(index=[3, 4]))
    with pytest.raises(EnsembleError, match=r"noisy lacks 2 id\(s\).*ZJ000003, ZJ000004"):
        ensemble(_config(synthetic, ["good", "noisy"], "bad"))


def test_mismatched_folds_are_an_error(synthetic: dict):
    path = synthetic["runs"]["noisy"] / OOF_FILE
    frame = read_predictions(path, require_fold=True)
    frame.loc[0, FOLD_COL] = 3
    write_predictions(path, frame)
    with pytest.raises(EnsembleError, match="noisy puts 1 id"):
        ensemble(_config(synthetic, ["good", "noisy"], "bad"))


def test_stacking_is_reported_and_used_only_if_it_wins(synthetic: dict):
    cfg = _config(synthetic, ["good", "noisy"], "stack")
    cfg.stacking = "auto"
    report = ensemble(cfg).report
    stack = report["stacking"]
    assert stack["nested"]["log_loss"] > 0 and stack["in_sample"]["log_loss"] > 0
    tempered = next(r for r in report["table"] if r["name"].startswith("+ temperature"))
    weighted_nested = tempered["nested"]["log_loss"]
    assert stack["used"] == (stack["nested"]["log_loss"] < weighted_nested)
    assert report["method"] == ("stacking" if stack["used"] else "weighted")


def test_cli_with_config_file(synthetic: dict, capsys: pytest.CaptureFixture):
    config = synthetic["root"] / "ensemble.yaml"
    out = synthetic["root"] / "runs" / "from_config"
    config.write_text(
        "runs:\n" + "".join(f"  - {synthetic['runs'][n]}\n" for n in ("good", "over"))
        + f"labels: {synthetic['labels']}\nout: {out}\nstacking: false\nsite_adapt: off\n"
        "space: logprob\nn_starts: 2\n"
    )
    assert main(["ensemble", "--config", str(config)]) == 0
    printed = capsys.readouterr().out
    assert "nested" in printed and "weights (logprob space)" in printed
    report = json.loads((out / ENSEMBLE_FILE).read_text())
    assert report["space"] == "logprob"
    assert report["site_adapt"] == {"mode": "off", "applied": False}
    assert main(["ensemble", "--config", str(config), "--set", "typo=1"]) == 1
