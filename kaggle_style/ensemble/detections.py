"""Detection-aware stacking: crop and full-frame members weighted per image by what the
detector said.

Most of a crop model's worst errors are images where the detector found no animal (the crop
model then sees the full frame, or a false box, and is confidently wrong), so one set of weights
for every image is not enough. This step adds, to the blended log-probabilities, each member's
centred log-probabilities times a per-image gate:
    logits = log p_blend + sum_m g_m(x) * (log p_m - mean_m' log p_m'),
    g_m(x) = a_m + b_m . f(x),
where f(x) is what the detector said about image x: its highest box confidence, the largest
box's share of the frame, and, for each crop threshold, the number of boxes at or above it and
whether a crop-trained member with that threshold fell back to the full frame (no such box).
All gates 0 is the blend unchanged; the weights are an L2-penalised multinomial log loss fit
(L-BFGS), so a confident large box can move trust to the crop member and no box to the
full-frame one. Like every step it is fitted on OOF rows and kept only where its nested
estimate improves log loss.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_softmax, softmax

from kaggle_style.ensemble.base import RowFacts, log_probs

DEFAULT_THRESHOLDS: tuple[float, ...] = (0.1, 0.5)  # the crop recipes' default, a sure box
NO_BOXES = np.zeros((0, 2))


def boxes_of(detections: Sequence[Any]) -> np.ndarray:
    """(boxes, 2) of [confidence, share of the frame] from `mdjson.Detection`s."""
    if not detections:
        return NO_BOXES
    return np.array(
        [[d.conf, max(d.bbox[2], 0.0) * max(d.bbox[3], 0.0)] for d in detections], dtype=np.float64
    )


def detection_features(
    boxes: Sequence[np.ndarray] | np.ndarray, thresholds: Sequence[float]
) -> np.ndarray:
    """(n, 2 + 2 * thresholds): max confidence, largest share, then per threshold
    log(1 + boxes at or above it) and 1 where none is (a crop member's full-frame fallback)."""
    rows = []
    for image in boxes:
        conf, share = image[:, 0], image[:, 1]
        kept = conf >= min(thresholds)
        row = [conf.max(initial=0.0), share[kept].max(initial=0.0)]
        for t in thresholds:
            count = int((conf >= t).sum())
            row += [np.log1p(count), float(count == 0)]
        rows.append(row)
    return np.asarray(rows, dtype=np.float64).reshape(len(boxes), 2 + 2 * len(thresholds))


@dataclass
class DetectionGate:
    """Per-member gate weights on standardised detection features (column 0: intercept)."""

    thresholds: tuple[float, ...]
    mean: np.ndarray  # (features,)
    scale: np.ndarray
    coef: np.ndarray  # (members, 1 + features)

    @property
    def active(self) -> bool:
        return bool(np.any(self.coef != 0))

    def design(self, rows: RowFacts) -> np.ndarray:
        assert rows.boxes is not None  # the step runs only where rows carry their boxes
        x = (detection_features(rows.boxes, self.thresholds) - self.mean) / self.scale
        return np.concatenate([np.ones((len(x), 1)), x], axis=1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "thresholds": list(self.thresholds),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DetectionGate:
        return cls(
            tuple(float(t) for t in data["thresholds"]),
            np.asarray(data["mean"], float),
            np.asarray(data["scale"], float),
            np.asarray(data["coef"], float),
        )


def _centred(members: np.ndarray) -> np.ndarray:
    """(n, m, k) members' log-probabilities minus their mean over members."""
    logs = log_probs(members)
    return logs - logs.mean(axis=1, keepdims=True)


def _gated(z: np.ndarray, centred: np.ndarray, gates: np.ndarray) -> np.ndarray:
    return z + np.einsum("nm,nmk->nk", gates, centred)


def _objective(
    z: np.ndarray, centred: np.ndarray, x: np.ndarray, y: np.ndarray, c: float
) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """Mean log loss of the gated logits + |coef|^2 / (2 c n), and its gradient."""
    n, m = len(z), centred.shape[1]
    onehot = np.eye(z.shape[1])[y]

    def objective(flat: np.ndarray) -> tuple[float, np.ndarray]:
        coef = flat.reshape(m, x.shape[1])
        logp = log_softmax(_gated(z, centred, x @ coef.T), axis=1)
        loss = -np.mean(logp[np.arange(n), y]) + np.sum(coef * coef) / (2.0 * c * n)
        d_gates = np.einsum("nk,nmk->nm", np.exp(logp) - onehot, centred) / n
        return float(loss), (d_gates.T @ x + coef / (c * n)).ravel()

    return objective


def fit_detection_gate(
    probs: np.ndarray,
    rows: RowFacts,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    c: float = 0.1,
) -> tuple[DetectionGate, np.ndarray]:
    """(gate weights fitted on the labelled rows, their gated rows)."""
    thresholds = tuple(float(t) for t in thresholds)
    assert rows.boxes is not None and rows.members is not None  # what the step needs
    features = detection_features(rows.boxes, thresholds)
    mean, scale = features.mean(axis=0), features.std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0)  # a constant feature stays 0 after centring
    n_members = rows.members.shape[1]
    gate = DetectionGate(thresholds, mean, scale, np.zeros((n_members, features.shape[1] + 1)))
    if n_members > 1:
        objective = _objective(
            log_probs(probs),
            _centred(rows.members),
            gate.design(rows),
            np.asarray(rows.y, np.int64),
            c,
        )
        result = minimize(objective, gate.coef.ravel(), jac=True, method="L-BFGS-B")
        gate.coef = result.x.reshape(gate.coef.shape)
    return gate, apply_detection_gate(gate, probs, rows)


def apply_detection_gate(gate: DetectionGate, probs: np.ndarray, rows: RowFacts) -> np.ndarray:
    if not gate.active:
        return probs
    gates = gate.design(rows) @ gate.coef.T
    assert rows.members is not None  # what the step needs
    return softmax(_gated(log_probs(probs), _centred(rows.members), gates), axis=1)
