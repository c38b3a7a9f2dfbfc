"""Temperature scaling: one scalar that makes a blend's confidence match its accuracy."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

LOG_T_BOUNDS = (-4.0, 4.0)  # temperature between ~0.02 and ~55
LOG_FLOOR = 1e-15  # probabilities are floored before a log so one zero cannot give -inf


def log_probs(probs: np.ndarray) -> np.ndarray:
    return np.log(np.clip(np.asarray(probs, dtype=np.float64), LOG_FLOOR, 1.0))


def nll(logits: np.ndarray, y: np.ndarray) -> float:
    """Mean log loss of softmax(logits): the objective every second-stage fit minimises."""
    return float(-np.mean(log_softmax(logits, axis=1)[np.arange(len(y)), y]))


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The T > 0 (fitted on log T) that minimises log loss of softmax(logits / T); 1 if no gain."""
    y = np.asarray(y, dtype=np.int64)
    result = minimize_scalar(
        lambda log_t: nll(logits / np.exp(log_t), y), bounds=LOG_T_BOUNDS, method="bounded"
    )
    t = float(np.exp(result.x))
    return t if nll(logits / t, y) < nll(logits, y) else 1.0
