"""kaggle_style.metrics: log loss matches scikit-learn; the prior baseline, the score fields,
the calibration error and the reliability bins are what a hand count gives."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import log_loss as sk_log_loss

from kaggle_style.metrics import (
    expected_calibration_error,
    log_loss,
    prior_log_loss,
    reliability_bins,
    score,
)
from kaggle_style.task import CONSERVISION_CLASSES as CLASSES


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
