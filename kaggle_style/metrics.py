"""Scores for probability predictions: the competition's log loss and the F1 family beside it.

Log loss follows DrivenData's (and scikit-learn's) definition: probabilities are clipped to
[eps, 1 - eps], rows renormalised, and the mean negative log-probability of the true class taken.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kaggle_style.constants import CLASSES

EPS = float(np.finfo(np.float64).eps)


def log_loss(y_true: np.ndarray, probs: np.ndarray, eps: float = EPS) -> float:
    """Multiclass log loss; `y_true` holds class indices, `probs` one row per sample."""
    probs = np.asarray(probs, dtype=np.float64)
    y_true = np.asarray(y_true, dtype=np.int64)
    clipped = np.clip(probs, eps, 1 - eps)
    clipped = clipped / clipped.sum(axis=1, keepdims=True)
    return float(-np.mean(np.log(clipped[np.arange(len(y_true)), y_true])))


def prior_log_loss(y_true: np.ndarray, n_classes: int = len(CLASSES)) -> float:
    """Log loss of always predicting the class frequencies: the bar any model must beat."""
    counts = np.bincount(np.asarray(y_true, dtype=np.int64), minlength=n_classes).astype(float)
    prior = counts / counts.sum()
    return log_loss(y_true, np.tile(prior, (len(y_true), 1)))


def score(
    y_true: np.ndarray, probs: np.ndarray, classes: tuple[str, ...] = CLASSES
) -> dict[str, Any]:
    """Every number a user reads about one set of predictions."""
    # sklearn takes 1.4 s to import: commands that never score (submit, validate) skip it
    from sklearn.metrics import confusion_matrix, f1_score

    y_true = np.asarray(y_true, dtype=np.int64)
    labels = np.arange(len(classes))
    y_pred = np.asarray(probs).argmax(axis=1)
    matrix = confusion_matrix(y_true, y_pred, labels=labels)
    support = matrix.sum(axis=1)
    per_class = np.divide(
        np.diag(matrix), support, out=np.full(len(classes), np.nan), where=support > 0
    )
    # F1 over the classes that occur (as scikit-learn does by default): a class absent from both
    # truth and prediction is not a failure to recall it.
    present = np.union1d(y_true, y_pred)
    f1 = {
        avg: float(f1_score(y_true, y_pred, labels=present, average=avg, zero_division=0))
        for avg in ("micro", "macro", "weighted")
    }
    return {
        "n": len(y_true),
        "log_loss": log_loss(y_true, probs),
        "prior_log_loss": prior_log_loss(y_true, len(classes)),
        "accuracy": float((y_pred == y_true).mean()) if len(y_true) else float("nan"),
        "f1_micro": f1["micro"],
        "f1_macro": f1["macro"],
        "f1_weighted": f1["weighted"],
        "per_class_accuracy": {
            c: (None if np.isnan(a) else float(a)) for c, a in zip(classes, per_class, strict=True)
        },
        "confusion_matrix": matrix.tolist(),
        "classes": list(classes),
    }


def reliability_bins(
    y_true: np.ndarray, probs: np.ndarray, n_bins: int = 15
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(share of rows, mean confidence, accuracy) of each non-empty top-label confidence bin.

    One binning for the ECE and the report's reliability plot, so the two always agree.
    """
    probs = np.asarray(probs, dtype=np.float64)
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == np.asarray(y_true)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, n_bins - 1)
    used = [b for b in range(n_bins) if (bins == b).any()]
    share = np.array([(bins == b).mean() for b in used])
    mean_conf = np.array([confidence[bins == b].mean() for b in used])
    accuracy = np.array([correct[bins == b].mean() for b in used])
    return share, mean_conf, accuracy


def expected_calibration_error(y_true: np.ndarray, probs: np.ndarray, n_bins: int = 15) -> float:
    """Top-label ECE: the gap between confidence and accuracy, weighted by bin size."""
    share, mean_conf, accuracy = reliability_bins(y_true, probs, n_bins)
    ece = 0.0
    for w, c, a in zip(share, mean_conf, accuracy, strict=True):  # bin order, as always summed
        ece += w * abs(a - c)
    return float(ece)


def format_summary(name: str, scores: dict[str, Any]) -> str:
    """One line a person reads at the end of a stage."""
    return (
        f"{name}: log loss {scores['log_loss']:.4f} (prior {scores['prior_log_loss']:.4f}) | "
        f"accuracy {scores['accuracy']:.3f} | F1 micro {scores['f1_micro']:.3f} "
        f"macro {scores['f1_macro']:.3f} weighted {scores['f1_weighted']:.3f} | n={scores['n']}"
    )
