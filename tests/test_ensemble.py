"""Ensemble on synthetic OOF data: models of different noise and one over-confident model;
the meta.csv steps on a synthetic camera-trap world (tests/ensemble_world.py); `Blend` rebuilt
from ensemble.json. Config checks, run integrity, ensemble.json and detections:
test_ensemble_files.py; label randomisation of every step: test_nested.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from ensemble_world import (
    K,
    model_probs,
    synthetic_config,
    world_config,
)
from scipy.special import softmax
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from kaggle_style.cli import main
from kaggle_style.constants import (
    CONFIG_FILE,
    ENSEMBLE_FILE,
    FOLD_COL,
    ID_COL,
    META_FILE,
    METRICS_FILE,
    OOF_FILE,
    TEST_FILE,
)
from kaggle_style.ensemble.base import RowFacts
from kaggle_style.ensemble.blend import Blend, fit_blend, fit_temperature, fit_weights
from kaggle_style.ensemble.inputs import new_rows
from kaggle_style.ensemble.run import EnsembleError, ensemble
from kaggle_style.ensemble.schema import read_report
from kaggle_style.ensemble.sequences import Pooling, apply_pooling, apply_time, fit_time
from kaggle_style.errors import UserError
from kaggle_style.metrics import log_loss
from kaggle_style.prediction_files import probs_of, read_predictions, write_predictions
from kaggle_style.task import CONSERVISION_CLASSES as CLASSES


def test_temperature_lowers_overconfident_log_loss():
    rng = np.random.default_rng(1)
    y = rng.integers(0, K, 2000)
    probs = model_probs(y, 1.0, 4.0, rng)
    t = fit_temperature(np.log(probs), y)
    assert t > 1.5
    assert log_loss(y, softmax(np.log(probs) / t, axis=1)) < log_loss(y, probs) - 0.1


@pytest.mark.parametrize("space", ["prob", "logprob"])
def test_blend_never_worse_than_best_single_model(space: str):
    rng = np.random.default_rng(2)
    y = rng.integers(0, K, 1500)
    models = [model_probs(y, n, s, rng) for n, s in [(1.0, 1.0), (2.5, 1.0), (1.0, 4.0)]]
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
    cfg = synthetic_config(synthetic, ["good", "noisy", "over"], "ens")
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
    y, folds = synthetic["y"], synthetic["folds"]
    members = [
        probs_of(read_predictions(synthetic["runs"][n] / OOF_FILE, require_fold=True))
        for n in ("good", "noisy", "over")
    ]
    blend = Blend(report["space"], weights)
    # The reported temperature is the one fitted on the reported weights' blend.
    assert report["temperature"] == pytest.approx(fit_temperature(blend.logits(members), y))
    # The written OOF file and both final figures are the same predictions.
    assert report["final"]["in_sample"]["log_loss"] == pytest.approx(log_loss(y, probs_of(oof)))
    assert report["final"]["nested"]["log_loss"] == pytest.approx(log_loss(y, result.nested))
    rows = {row["name"]: row for row in report["table"]}
    assert {"good", "noisy", "over"} <= set(rows)
    assert any(name.startswith("equal-weight mean") for name in rows)
    assert any(name.startswith("+ temperature") for name in rows)
    assert all(row["nested"] is not None for row in report["table"])
    # Each fold's recorded fit, applied to that fold, gives exactly its nested predictions.
    assert [fit["fold"] for fit in report["nested_fits"]] == [0, 1, 2, 3]
    for fit in report["nested_fits"]:
        held = folds == fit["fold"]
        fold_blend = Blend(
            report["space"], np.array(list(fit["weights"].values())), fit["temperature"]
        )
        np.testing.assert_allclose(
            result.nested[held], fold_blend.predict([m[held] for m in members]), atol=1e-12
        )
    best_single = min(rows[n]["in_sample"]["log_loss"] for n in ("good", "noisy", "over"))
    assert report["final"]["in_sample"]["log_loss"] <= best_single + 1e-9
    assert set(report["space_choice"]["log_loss"]) == {"prob", "logprob"}
    assert report["space"] == min(
        report["space_choice"]["log_loss"], key=report["space_choice"]["log_loss"].get
    )

    metrics = json.loads((out / METRICS_FILE).read_text())
    assert metrics["overall"]["log_loss"] == pytest.approx(log_loss(synthetic["y"], result.oof))
    assert metrics["nested"]["log_loss"] == pytest.approx(report["final"]["nested"]["log_loss"])
    written = yaml.safe_load((out / CONFIG_FILE).read_text())
    assert written["runs"] == cfg.runs
    assert "git_commit" in written


def test_ensemble_of_an_ensemble(synthetic: dict):
    first = ensemble(synthetic_config(synthetic, ["good", "noisy"], "ens1"))
    synthetic["runs"]["ens1"] = synthetic["root"] / "runs" / "ens1"
    second = ensemble(synthetic_config(synthetic, ["ens1", "over"], "ens2"))
    assert set(second.report.to_dict()["weights"]) == {"ens1", "over"}
    best = min(
        first.report.to_dict()["final"]["in_sample"]["log_loss"],
        second.report.to_dict()["table"][1]["in_sample"]["log_loss"],
    )
    assert second.report.to_dict()["final"]["in_sample"]["log_loss"] <= best + 1e-9


def test_single_run_is_temperature_scaling(synthetic: dict):
    result = ensemble(synthetic_config(synthetic, ["over"], "over_ts"))
    report = result.report.to_dict()
    assert report["weights"] == {"over": 1.0}
    assert report["temperature"] > 1.5
    model = report["table"][0]["in_sample"]["log_loss"]
    assert report["final"]["in_sample"]["log_loss"] < model
    assert report["final"]["nested"]["log_loss"] < model


def test_mismatched_ids_name_the_run_and_ids(synthetic: dict):
    path = synthetic["runs"]["noisy"] / OOF_FILE
    frame = read_predictions(path, require_fold=True)
    write_predictions(path, frame.drop(index=[3, 4]))
    with pytest.raises(EnsembleError, match=r"noisy lacks 2 id\(s\).*ZJ000003, ZJ000004") as err:
        ensemble(synthetic_config(synthetic, ["good", "noisy"], "bad"))
    assert isinstance(err.value, UserError)


def test_mismatched_folds_are_an_error(synthetic: dict):
    path = synthetic["runs"]["noisy"] / OOF_FILE
    frame = read_predictions(path, require_fold=True)
    frame.loc[0, FOLD_COL] = 3
    write_predictions(path, frame)
    with pytest.raises(EnsembleError, match="noisy puts 1 id"):
        ensemble(synthetic_config(synthetic, ["good", "noisy"], "bad"))


def test_stacking_is_reported_and_used_only_if_it_wins(synthetic: dict):
    cfg = synthetic_config(synthetic, ["good", "noisy"], "stack")
    cfg.stacking = "auto"
    report = ensemble(cfg).report.to_dict()
    stack = report["stacking"]
    # The nested figure is a plain sklearn pipeline cross-fitted on the site folds.
    y, folds = synthetic["y"], synthetic["folds"]
    x = np.concatenate(
        [
            np.log(np.clip(probs_of(read_predictions(synthetic["runs"][n] / OOF_FILE)), 1e-6, 1.0))
            for n in ("good", "noisy")
        ],
        axis=1,
    )
    nested = np.empty((len(y), K))
    for fold in range(4):
        held = folds == fold
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        nested[held] = model.fit(x[~held], y[~held]).predict_proba(x[held])
    assert stack["nested"]["log_loss"] == pytest.approx(log_loss(y, nested), abs=1e-9)
    assert stack["in_sample"]["log_loss"] < stack["nested"]["log_loss"]  # in-sample flatters
    tempered = next(r for r in report["table"] if r["name"].startswith("+ temperature"))
    weighted_nested = tempered["nested"]["log_loss"]
    assert stack["used"] == (stack["nested"]["log_loss"] < weighted_nested)
    assert report["method"] == ("stacking" if stack["used"] else "weighted")


def test_forced_stacking_writes_its_cross_fitted_oof(synthetic: dict):
    cfg = synthetic_config(synthetic, ["good", "noisy"], "stack_on")
    cfg.stacking = True
    result = ensemble(cfg)
    report = result.report.to_dict()
    assert report["method"] == "stacking"
    # The written OOF is the cross-fitted one: its log loss is the nested one, not in-sample.
    assert report["final"]["in_sample"] == report["stacking"]["nested"]
    np.testing.assert_array_equal(result.oof, result.nested)


def test_cli_with_config_file(synthetic: dict, capsys: pytest.CaptureFixture):
    config = synthetic["root"] / "ensemble.yaml"
    # outside the data folder, which a stage never writes into
    out = synthetic["root"].parent / f"{synthetic['root'].name}_from_config"
    config.write_text(
        "runs:\n"
        + "".join(f"  - {synthetic['runs'][n]}\n" for n in ("good", "over"))
        + f"labels: {synthetic['labels']}\nout: {out}\ndata: {synthetic['root']}\n"
        "stacking: false\nsite_adapt: off\n"
        "space: logprob\nn_starts: 2\n"
    )
    assert main(["ensemble", "--config", str(config)]) == 0
    printed = capsys.readouterr().out
    assert "nested" in printed and "weights (logprob space)" in printed
    report = json.loads((out / ENSEMBLE_FILE).read_text())
    assert report["space"] == "logprob"
    assert report["site_adapt"] == {"mode": "off", "applied": False}
    assert main(["ensemble", "--config", str(config), "--set", "typo=1"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("kaggle-style ensemble: error:") and "typo" in error
    assert len(error.splitlines()) == 1


# ----------------------------------------------------------------------------- meta.csv steps


def test_meta_steps_are_gated_recorded_and_printed(world_files, capsys: pytest.CaptureFixture):
    _, runs, root = world_files
    out = root.parent / f"{root.name}_ens"  # outside the data folder, which a stage never writes
    assert (
        main(
            [
                "ensemble",
                *runs,
                "--data",
                str(root),
                "--out",
                str(out),
                "--space",
                "logprob",
                "--set",
                "n_starts=1",
                "stacking=false",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    report = json.loads((out / ENSEMBLE_FILE).read_text())
    names = [row["name"] for row in report["table"]]
    for key, title, row in (
        ("sequences", "sequence pooling", "+ sequence pooling"),
        ("time", "time of day", "+ time of day"),
    ):
        info = report[key]
        nested = info["nested"]
        assert info["mode"] == "auto"
        assert info["applied"] == (nested["after"] < nested["before"])
        assert (
            f"{title}: " in printed
            and f"nested {nested['before']:.4f} -> {nested['after']:.4f}" in printed
        )
        assert any(n.startswith(row) for n in names) == info["applied"]
    # Bursts and activity hours carry signal in this world: both steps win on nested OOF.
    assert report["sequences"]["applied"] and report["time"]["applied"]
    assert report["sequences"]["gap"] in (10, 30, 60, 120)
    assert set(report["sequences"]["nested"]["per_fold"]) == {str(f) for f in range(5)}
    assert np.asarray(report["time"]["coef"]).shape == (K, 5)  # 2 cycles (sin, cos) + night
    last = report["site_adapt"] if report["site_adapt"]["applied"] else report["time"]
    # The chain's own nested figure is the last applied step's; the reported one reruns the
    # chain, choices included, without each fold (a fold where a gate chose otherwise differs).
    final = report["final"]
    assert final["nested_given_choices"]["log_loss"] == pytest.approx(last["nested"]["after"])
    assert len(report["choices_per_fold"]) == 5
    assert final["nested"]["log_loss"] == pytest.approx(report["table"][-1]["nested"]["log_loss"])


@pytest.mark.heavy
def test_blend_from_report_reproduces_the_test_predictions(world_files):
    """What `predict` rebuilds from ensemble.json gives the ensemble's own test predictions."""
    world, runs, root = world_files
    result = ensemble(
        world_config(
            root,
            runs,
            space="logprob",
            stacking=True,
            site_adapt="on",
            sequences="on",
            time_adjust="on",
        )
    )
    blend = Blend.from_report(read_report(root / "ens" / ENSEMBLE_FILE))
    assert blend.stacker is not None
    assert [step.key for step, _ in blend.steps] == ["sequences", "time", "site_adapt"]
    members = [probs_of(read_predictions(Path(r) / TEST_FILE)) for r in runs]
    # New images' rows as `predict` builds them: sites, and a frame in the meta.csv layout.
    rows = new_rows(
        world.test.sites, pd.read_csv(root / META_FILE, dtype={ID_COL: str}), world.test.ids
    )
    np.testing.assert_allclose(blend.apply(members, rows), result.test, rtol=0, atol=1e-12)
    # Rows without sites or times: the steps that need them are named and left out.
    assert [s.key for s in blend.missing(RowFacts())] == ["sequences", "time", "site_adapt"]
    np.testing.assert_array_equal(blend.apply(members), blend.stacker.predict(members))


def test_pooling_shares_evidence_within_a_burst_and_never_across_sites():
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.ones(K), 5)
    rows = RowFacts(
        sites=np.array(["A", "A", "A", "A", "B"]), times=np.array([0.0, 5.0, 500.0, np.nan, 3.0])
    )
    pooled = apply_pooling(Pooling(gap=30.0, weight=1.0), probs, rows)
    burst = np.exp(np.log(probs[:2]).mean(axis=0))
    np.testing.assert_allclose(pooled[:2], np.tile(burst / burst.sum(), (2, 1)), atol=1e-12)
    np.testing.assert_allclose(pooled[2:], probs[2:], atol=1e-12)  # alone: late, untimed, site B
    half = apply_pooling(Pooling(gap=30.0, weight=0.5), probs, rows)
    assert np.all(np.abs(half[:2] - probs[:2]).sum(axis=1) > 0)
    assert np.all(np.abs(half[:2] - pooled[:2]).sum(axis=1) > 0)


def test_time_step_learns_who_comes_out_at_night():
    rng = np.random.default_rng(4)
    n = 3000
    night = rng.integers(0, 2, n).astype(float)
    hours = np.where(night == 1, rng.uniform(20, 28, n) % 24, rng.uniform(8, 18, n))
    civet, monkey = CLASSES.index("civet_genet"), CLASSES.index("monkey_prosimian")
    y = np.where(
        night == 1,
        np.where(rng.random(n) < 0.7, civet, monkey),
        np.where(rng.random(n) < 0.7, monkey, civet),
    )
    probs = np.full((n, K), 0.02)
    probs[:, [civet, monkey]] = 0.44  # the image alone cannot tell them apart
    rows = RowFacts(y=y, hours=hours, night=night)
    fit, adjusted = fit_time(probs, rows, c=1.0, harmonics=1)
    dark = night == 1
    assert adjusted[dark, civet].mean() > 0.6 > 0.4 > adjusted[~dark, civet].mean()
    assert adjusted[~dark, monkey].mean() > 0.6 > 0.4 > adjusted[dark, monkey].mean()
    assert log_loss(y, adjusted) < log_loss(y, probs) - 0.1
    unread = RowFacts(hours=np.full(n, np.nan), night=np.full(n, np.nan))
    np.testing.assert_allclose(apply_time(fit, probs, unread), probs, atol=1e-12)


def test_meta_steps_without_meta_are_skipped_or_refused(world_files):
    _, runs, root = world_files
    (root / META_FILE).unlink()
    report = ensemble(world_config(root, runs, space="logprob", stacking=False)).report.to_dict()
    for key in ("sequences", "time"):
        assert report[key]["applied"] is False
        assert "meta.csv" in report[key]["skipped"]
    with pytest.raises(EnsembleError, match=r"sequences is on but there is no meta\.csv"):
        ensemble(world_config(root, runs, sequences="on"))


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda f: f.assign(datetime=f["datetime"].mask(f.index == 3, "yesterday")),
            r"column 'datetime' is not ISO 8601 for 1 id\(s\): S000003",
        ),
        (
            lambda f: f.assign(hour=f["hour"].mask(f.index == 4, "25")),
            r"column 'hour' is not a number from 0 to 24 for 1 id\(s\): S000004",
        ),
        (
            lambda f: f.assign(night=f["night"].mask(f.index == 5, "2")),
            r"column 'night' is not 0 or 1 for 1 id\(s\): S000005",
        ),
        (
            lambda f: f.drop(index=[6]),
            r"no row for 1 OOF id\(s\): S000006; rerun `kaggle-style meta`",
        ),
    ],
)
def test_meta_errors_name_the_file_the_ids_and_the_fix(world_files, change, message):
    _, runs, root = world_files
    path = root / META_FILE
    change(pd.read_csv(path, dtype=str, keep_default_na=False)).to_csv(path, index=False)
    with pytest.raises(EnsembleError, match=f"{path}: {message}"):
        ensemble(world_config(root, runs, space="logprob", stacking=False))
