"""Two steps that read the camera's info bar (meta.csv): sequence pooling and a time adjustment.

Camera traps fire in bursts, and the frames of one visit show one animal: pooling the blended
log-probabilities over a sequence lets a clear frame speak for a blurred one. A sequence is a
site's images whose times lie within `gap` seconds of the previous one (sequences never span
sites, so never span folds or the train/test split); the gap and the pooling weight are chosen
on OOF rows, an image with no readable time stays alone.

Activity hours separate nocturnal civets, genets and leopards from monkeys and birds. The time
step adds `coef @ features(hour, night)` to every row's log-probabilities: a multinomial
logistic model whose offset is the blended logits (coefficient fixed at 1: recalibration is the
temperature's and stacking's job) with no intercept (a class-prior shift is site adaptation's
job). So it measures what the hour adds, and rows with no readable time are left as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import log_softmax, softmax

from kaggle_style.ensemble.base import RowFacts, log_probs
from kaggle_style.meta.sequences import assign_sequences
from kaggle_style.metrics import log_loss

DEFAULT_GAPS: tuple[float, ...] = (10.0, 30.0, 60.0, 120.0)  # seconds
DEFAULT_POOL_WEIGHTS: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)


def sequence_ids(sites: np.ndarray, seconds: np.ndarray, gap: float) -> np.ndarray:
    """The meta stage's sequences (one rule for both) from the seconds the ensemble carries."""
    return assign_sequences(sites, pd.to_datetime(np.asarray(seconds, np.float64), unit="s"), gap)


def pool(probs: np.ndarray, groups: np.ndarray, weight: float) -> np.ndarray:
    """softmax((1 - w) * own log-probabilities + w * their sequence's mean)."""
    z = log_probs(probs)
    _, index = np.unique(np.asarray(groups), return_inverse=True)
    index = index.reshape(-1)
    counts = np.bincount(index)
    sums = np.stack(
        [np.bincount(index, weights=z[:, k], minlength=len(counts)) for k in range(z.shape[1])],
        axis=1,
    )
    return softmax((1.0 - weight) * z + weight * (sums / counts[:, None])[index], axis=1)


@dataclass
class Pooling:
    """A chosen gap and weight (weight 0: no pooling)."""

    gap: float | None = None
    weight: float = 0.0
    grid: dict[str, float] = field(default_factory=dict)  # fitting rows' log loss per option

    @property
    def active(self) -> bool:
        return self.gap is not None and self.weight > 0


def fit_pooling(
    probs: np.ndarray,
    rows: RowFacts,
    gaps: Sequence[float] = DEFAULT_GAPS,
    weights: Sequence[float] = DEFAULT_POOL_WEIGHTS,
    force: bool = False,
) -> tuple[Pooling, np.ndarray]:
    """(the gap and weight with the lowest log loss on the labelled rows, their pooled rows).

    Ties go to no pooling, then to the smaller gap and weight; `force` never picks no pooling.
    """
    assert rows.y is not None and rows.sites is not None and rows.times is not None  # fitting rows
    options: list[tuple[float | None, float, np.ndarray]] = [(None, 0.0, probs)]
    for gap in gaps:
        groups = sequence_ids(rows.sites, rows.times, gap)
        options += [(gap, w, pool(probs, groups, w)) for w in weights]
    losses = [log_loss(rows.y, p) for _, _, p in options]
    grid = {"none": losses[0]}
    grid.update(
        {
            f"gap {g:g}s weight {w:g}": v
            for (g, w, _), v in zip(options[1:], losses[1:], strict=True)
        }
    )
    first = 1 if force and len(options) > 1 else 0
    best = first + int(np.argmin(losses[first:]))
    chosen_gap, weight, pooled = options[best]
    return Pooling(chosen_gap, weight, grid), pooled


def apply_pooling(fit: Pooling, probs: np.ndarray, rows: RowFacts) -> np.ndarray:
    if not fit.active or fit.gap is None:  # (active: a gap and a weight)
        return probs
    assert rows.sites is not None and rows.times is not None  # what the step needs
    return pool(probs, sequence_ids(rows.sites, rows.times, fit.gap), fit.weight)


def time_features(
    hours: np.ndarray | None, night: np.ndarray | None, n: int, harmonics: int
) -> np.ndarray:
    """sin/cos of the hour (1..harmonics cycles a day) and night as +1/-1; 0 where unread."""
    cols: list[np.ndarray] = []
    hours = np.full(n, np.nan) if hours is None else np.asarray(hours, np.float64)
    known = np.isfinite(hours)
    angle = 2.0 * np.pi * np.where(known, hours, 0.0) / 24.0
    for k in range(1, harmonics + 1):
        cols += [np.where(known, np.sin(k * angle), 0.0), np.where(known, np.cos(k * angle), 0.0)]
    night = np.full(n, np.nan) if night is None else np.asarray(night, np.float64)
    cols.append(np.where(np.isfinite(night), 2.0 * night - 1.0, 0.0))
    return np.stack(cols, axis=1)


@dataclass
class TimeAdjust:
    """Per-class weights on the time features, added to the log-probabilities."""

    coef: np.ndarray  # (classes, features)
    harmonics: int = 1

    @property
    def active(self) -> bool:
        return bool(np.any(self.coef != 0))

    def to_dict(self) -> dict[str, Any]:
        return {"coef": self.coef.tolist(), "harmonics": self.harmonics}


def _time_objective(
    z: np.ndarray, x: np.ndarray, y: np.ndarray, c: float
) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """Mean log loss of softmax(z + x @ W.T) + |W|^2 / (2 c n), and its gradient in W."""
    n, k = z.shape
    onehot = np.eye(k)[y]

    def objective(flat: np.ndarray) -> tuple[float, np.ndarray]:
        w = flat.reshape(k, x.shape[1])
        logp = log_softmax(z + x @ w.T, axis=1)
        loss = -np.mean(logp[np.arange(n), y]) + np.sum(w * w) / (2.0 * c * n)
        grad = (np.exp(logp) - onehot).T @ x / n + w / (c * n)
        return float(loss), grad.ravel()

    return objective


def fit_time(
    probs: np.ndarray, rows: RowFacts, c: float = 0.1, harmonics: int = 2
) -> tuple[TimeAdjust, np.ndarray]:
    """(L2-penalised weights fitted by L-BFGS on the labelled rows, their adjusted rows)."""
    x = time_features(rows.hours, rows.night, len(probs), harmonics)
    z = log_probs(probs)
    coef = np.zeros((z.shape[1], x.shape[1]))
    if np.any(x != 0):
        objective = _time_objective(z, x, np.asarray(rows.y, np.int64), c)
        result = minimize(objective, coef.ravel(), jac=True, method="L-BFGS-B")
        coef = result.x.reshape(coef.shape)
    fit = TimeAdjust(coef, harmonics)
    return fit, apply_time(fit, probs, rows)


def apply_time(fit: TimeAdjust, probs: np.ndarray, rows: RowFacts) -> np.ndarray:
    if not fit.active:
        return probs
    x = time_features(rows.hours, rows.night, len(probs), fit.harmonics)
    return softmax(log_probs(probs) + x @ fit.coef.T, axis=1)
