"""Scores for probability predictions: log loss, the F1 family, and the task metrics by name.

Log loss follows DrivenData's (and scikit-learn's) definition: probabilities are clipped to
[eps, 1 - eps], rows renormalised, and the mean negative log-probability of the true class taken.
A task names the metric it is scored by (`METRICS`); training and the ensemble still fit and
choose by log loss (a proper score) and report the task's metric beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

EPS = float(np.finfo(np.float64).eps)


def log_loss(y_true: np.ndarray, probs: np.ndarray, eps: float = EPS) -> float:
    """Multiclass log loss; `y_true` holds class indices, `probs` one row per sample."""
    probs = np.asarray(probs, dtype=np.float64)
    y_true = np.asarray(y_true, dtype=np.int64)
    clipped = np.clip(probs, eps, 1 - eps)
    clipped = clipped / clipped.sum(axis=1, keepdims=True)
    return float(-np.mean(np.log(clipped[np.arange(len(y_true)), y_true])))


def prior_log_loss(y_true: np.ndarray, n_classes: int) -> float:
    """Log loss of always predicting the class frequencies: the bar any model must beat."""
    counts = np.bincount(np.asarray(y_true, dtype=np.int64), minlength=n_classes).astype(float)
    prior = counts / counts.sum()
    return log_loss(y_true, np.tile(prior, (len(y_true), 1)))


def score(
    y_true: np.ndarray,
    probs: np.ndarray,
    classes: tuple[str, ...],
    metric_name: str | None = None,
) -> dict[str, Any]:
    """Every number a user reads about one set of predictions; with `metric_name`, the task's
    metric under its own name and `metric` naming it."""
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
    out: dict[str, Any] = {
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
    if metric_name is not None and metric_name != "log_loss":
        out["metric"] = metric_name
        out[metric_name] = metric(metric_name)(y_true, probs)
    return out


def accuracy(y_true: np.ndarray, probs: np.ndarray) -> float:
    y_true = np.asarray(y_true, dtype=np.int64)
    return float((np.asarray(probs).argmax(axis=1) == y_true).mean()) if len(y_true) else np.nan


def macro_f1(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Macro F1 of the argmax over the classes that occur in truth or prediction."""
    from sklearn.metrics import f1_score

    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(probs).argmax(axis=1)
    present = np.union1d(y_true, y_pred)
    return float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0))


def roc_auc(y_true: np.ndarray, probs: np.ndarray) -> float:
    """ROC AUC of the second class's probability (two classes only)."""
    from sklearn.metrics import roc_auc_score

    probs = np.asarray(probs, dtype=np.float64)
    if probs.shape[1] != 2:
        raise ValueError(f"roc_auc needs two classes, not {probs.shape[1]}")
    y_true = np.asarray(y_true, dtype=np.int64)
    if len(np.unique(y_true)) < 2:
        return float("nan")
    return float(roc_auc_score(y_true, probs[:, 1]))


@dataclass(frozen=True)
class Metric:
    """A task metric: its function of (class indices, probabilities) and its direction."""

    name: str
    title: str
    fn: Callable[[np.ndarray, np.ndarray], float]
    higher_is_better: bool

    def __call__(self, y_true: np.ndarray, probs: np.ndarray) -> float:
        return self.fn(y_true, probs)

    def better(self, a: float, b: float) -> bool:
        """Whether `a` is a better value than `b`."""
        return a > b if self.higher_is_better else a < b


METRICS: dict[str, Metric] = {
    "log_loss": Metric("log_loss", "log loss", log_loss, False),
    "accuracy": Metric("accuracy", "accuracy", accuracy, True),
    "macro_f1": Metric("macro_f1", "macro F1", macro_f1, True),
    "roc_auc": Metric("roc_auc", "ROC AUC", roc_auc, True),
}


def metric(name: str) -> Metric:
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; known: {', '.join(METRICS)}")
    return METRICS[name]


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
    """One line a person reads at the end of a stage (the task's metric first when it has one
    other than log loss)."""
    task_metric = scores.get("metric")
    first = ""
    if task_metric and task_metric != "log_loss" and task_metric in scores:
        first = f"{METRICS[task_metric].title} {scores[task_metric]:.4f} | "
    return (
        f"{name}: {first}log loss {scores['log_loss']:.4f} "
        f"(prior {scores['prior_log_loss']:.4f}) | "
        f"accuracy {scores['accuracy']:.3f} | F1 micro {scores['f1_micro']:.3f} "
        f"macro {scores['f1_macro']:.3f} weighted {scores['f1_weighted']:.3f} | n={scores['n']}"
    )
