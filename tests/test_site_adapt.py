"""Per-site label-shift adaptation on synthetic sites whose class mixes are known."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ensemble_world import nested_site_adapt
from scipy.special import softmax

from kaggle_style.constants import ENSEMBLE_FILE, ID_COL, OOF_FILE, TEST_FILE
from kaggle_style.ensemble.run import EnsembleConfig, ensemble
from kaggle_style.ensemble.sites import (
    adapt_site_priors,
    choose_strength,
    em_priors,
    source_priors,
)
from kaggle_style.metrics import log_loss
from kaggle_style.prediction_files import make_frame, write_predictions
from kaggle_style.task import CONSERVISION_CLASSES as CLASSES

K = len(CLASSES)


def _means(rng: np.random.Generator, dim: int = 4, spread: float = 1.2) -> np.ndarray:
    return spread * rng.normal(size=(K, dim))


def _posteriors(y: np.ndarray, mu: np.ndarray, prior: np.ndarray, rng: np.random.Generator):
    """Exact Bayes posteriors of Gaussian classes under `prior`: a calibrated model."""
    x = mu[y] + rng.normal(size=(len(y), mu.shape[1]))
    loglik = -0.5 * ((x[:, None, :] - mu[None]) ** 2).sum(axis=-1)
    return softmax(loglik + np.log(prior), axis=1)


def _sites(rng: np.random.Generator, n_sites: int, per_site: int, concentration: float | None):
    """Labels and site names; each site draws its own class mix (None: all share one mix)."""
    ys, sites = [], []
    for s in range(n_sites):
        mix = (
            np.full(K, 1.0 / K)
            if concentration is None
            else rng.dirichlet(np.full(K, concentration))
        )
        ys.append(rng.choice(K, per_site, p=mix))
        sites += [f"S{s:03d}"] * per_site
    return np.concatenate(ys), np.array(sites)


def test_em_converges_to_known_prior():
    rng = np.random.default_rng(0)
    mu = _means(rng)
    train_prior = np.full(K, 1.0 / K)
    true_prior = np.array([0.4, 0.25, 0.15, 0.1, 0.05, 0.03, 0.01, 0.01])
    y = rng.choice(K, 20000, p=true_prior)
    probs = _posteriors(y, mu, train_prior, rng)
    naive = probs.mean(axis=0)
    estimate = em_priors(probs, np.zeros(len(y), dtype=int), 1, train_prior, strength=0.0)[0]
    assert np.abs(estimate - true_prior).max() < 0.02
    assert np.abs(estimate - true_prior).max() < np.abs(naive - true_prior).max() / 2
    # A pseudo-count much larger than the site keeps the training prior.
    shrunk = em_priors(probs, np.zeros(len(y), dtype=int), 1, train_prior, strength=1e9)[0]
    np.testing.assert_allclose(shrunk, train_prior, atol=1e-4)


def test_adaptation_lowers_nested_log_loss_on_skewed_sites():
    rng = np.random.default_rng(1)
    y, sites = _sites(rng, n_sites=30, per_site=80, concentration=0.3)
    folds = np.array([int(s[1:]) % 5 for s in sites])
    train_prior = np.bincount(y, minlength=K) / len(y)
    probs = _posteriors(y, _means(rng), train_prior, rng)
    result = nested_site_adapt(probs, y, sites, folds)
    assert result.log_loss_after < result.log_loss_before - 0.05
    assert all(s is not None for s in result.strength_per_fold.values())
    assert log_loss(y, result.probs) == pytest.approx(result.log_loss_after, rel=1e-6)
    adapted, priors = adapt_site_priors(probs, sites, train_prior, strength=10.0)
    assert set(priors) == set(sites)
    np.testing.assert_allclose(adapted.sum(axis=1), 1.0)


def test_identical_priors_do_no_harm():
    rng = np.random.default_rng(2)
    y, sites = _sites(rng, n_sites=30, per_site=80, concentration=None)
    folds = np.array([int(s[1:]) % 5 for s in sites])
    train_prior = np.full(K, 1.0 / K)
    probs = _posteriors(y, _means(rng), train_prior, rng)
    result = nested_site_adapt(probs, y, sites, folds)
    assert result.log_loss_after <= result.log_loss_before + 0.005
    strength, grid = choose_strength(probs, y, sites, train_prior)
    assert strength is None or strength >= 100
    assert grid["none"] - min(grid.values()) < 0.005
    unchanged, _ = adapt_site_priors(probs, sites, train_prior, strength=None)
    np.testing.assert_array_equal(unchanged, probs)


def _write_site_run(root: Path, concentration: float | None, seed: int) -> EnsembleConfig:
    """One run over skewed OOF sites and skewed test sites, with the DrivenData site tables."""
    rng = np.random.default_rng(seed)
    mu = _means(rng)
    y, sites = _sites(rng, n_sites=25, per_site=60, concentration=concentration)
    y_test, test_sites = _sites(rng, n_sites=8, per_site=40, concentration=concentration)
    test_sites = np.char.replace(test_sites, "S", "T")
    prior = np.bincount(y, minlength=K) / len(y)
    ids = np.array([f"ZJ{i:06d}" for i in range(len(y))])
    test_ids = np.array([f"ZT{i:06d}" for i in range(len(y_test))])
    folds = np.array([int(s[1:]) % 5 for s in sites])
    write_predictions(
        root / "run" / OOF_FILE,
        make_frame(ids, _posteriors(y, mu, prior, rng), folds, classes=CLASSES),
    )
    write_predictions(
        root / "run" / TEST_FILE,
        make_frame(test_ids, _posteriors(y_test, mu, prior, rng), classes=CLASSES),
    )
    labels = pd.DataFrame({ID_COL: ids})
    labels[list(CLASSES)] = np.eye(K)[y]
    labels.to_csv(root / "train_labels.csv", index=False)
    for name, i, s in (
        ("train_features.csv", ids, sites),
        ("test_features.csv", test_ids, test_sites),
    ):
        pd.DataFrame({ID_COL: i, "filepath": [f"x/{v}.jpg" for v in i], "site": s}).to_csv(
            root / name, index=False
        )
    return EnsembleConfig(
        runs=[str(root / "run")], data=str(root), out=str(root / "ens"), stacking=False, n_starts=2
    )


def test_ensemble_applies_site_adaptation_when_nested_improves(tmp_path: Path):
    cfg = _write_site_run(tmp_path, concentration=0.3, seed=3)
    result = ensemble(cfg)
    site = json.loads((tmp_path / "ens" / ENSEMBLE_FILE).read_text())["site_adapt"]
    assert site["mode"] == "auto"
    assert site["applied"] is True
    assert site["nested"]["after"] < site["nested"]["before"]
    assert site["in_sample"]["after"] < site["in_sample"]["before"]
    assert site["strength"] > 0
    assert len(site["priors"]["oof"]) == 25 and len(site["priors"]["test"]) == 8
    entry = next(iter(site["priors"]["oof"].values()))
    assert {"n", "before", "after", "true"} <= set(entry)
    final = result.report.to_dict()["final"]
    assert final["nested"]["log_loss"] == pytest.approx(site["nested"]["after"])


def test_ensemble_without_site_tables_skips_adaptation_in_auto(tmp_path: Path):
    cfg = _write_site_run(tmp_path, concentration=0.3, seed=4)
    (tmp_path / "test_features.csv").unlink()
    report = ensemble(cfg).report.to_dict()
    assert report["site_adapt"]["applied"] is False
    assert "test_features.csv" in report["site_adapt"]["skipped"]


def test_source_priors_follow_each_folds_training_mix_and_the_models_tilt():
    """Fold k's model learnt the other folds' mix, tilted toward class 0 (a class weight):
    source_priors comes closer to that per fold than the labels' overall frequencies, and
    adapting from it beats adapting from those frequencies."""
    rng = np.random.default_rng(5)
    mu = _means(rng)
    y, sites = _sites(rng, n_sites=30, per_site=50, concentration=0.5)
    folds = np.array([int(s[1:]) % 5 for s in sites])
    tilt = np.ones(K)
    tilt[0] = 2.0
    probs, learnt = np.empty((len(y), K)), np.empty((len(y), K))
    for fold in range(5):
        held = folds == fold
        mix = np.bincount(y[~held], minlength=K) / (~held).sum() * tilt
        learnt[held] = mix / mix.sum()
        probs[held] = _posteriors(y[held], mu, learnt[held][0], rng)
    rows, test = source_priors(probs, y, folds)
    freq = np.bincount(y, minlength=K) / len(y)
    assert np.abs(rows - learnt).sum(axis=1).mean() < np.abs(freq - learnt).sum(axis=1).mean()
    np.testing.assert_allclose(test, probs.mean(axis=0) / probs.mean(axis=0).sum())
    with_source = min(choose_strength(probs, y, sites, rows)[1].values())
    grid_freq = choose_strength(probs, y, sites, freq)[1]
    assert with_source < min(grid_freq.values()) < grid_freq["none"]
