"""Stacking: a multinomial logistic regression on every model's log-probabilities.

sklearn fits it; the fitted numbers are kept as plain arrays (`Stacker`), so ensemble.json can
carry the model and `predict` can apply it to new images without a pickle.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.special import expit, softmax

from kaggle_style.ensemble.chain import FoldState, StepPredictions, cross_fit, fit_folds

STACK_FLOOR = 1e-6  # features: log-probabilities bounded to [log 1e-6, 0]


def stack_features(probs: Sequence[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.log(np.clip(p, STACK_FLOOR, 1.0)) for p in probs], axis=1)


@dataclass
class Stacker:
    """A fitted standardise-then-logistic-regression, as arrays."""

    mean: np.ndarray  # (features,)
    scale: np.ndarray  # (features,)
    coef: np.ndarray  # (classes seen, features), or (1, features) when two classes were seen
    intercept: np.ndarray
    classes: np.ndarray  # the class indices the fitting rows contained
    n_classes: int

    def predict_features(self, x: np.ndarray) -> np.ndarray:
        """Full-width probabilities, even when the fitting rows lacked a class."""
        decision = ((x - self.mean) / self.scale) @ self.coef.T + self.intercept
        if self.coef.shape[0] == 1:  # sklearn's binary form: one logit for the second class
            second = expit(decision[:, 0])
            seen = np.stack([1.0 - second, second], axis=1)
        else:
            seen = softmax(decision, axis=1)
        out = np.full((len(x), self.n_classes), STACK_FLOOR)
        out[:, self.classes] = seen
        return out / out.sum(axis=1, keepdims=True)

    def predict(self, probs: Sequence[np.ndarray]) -> np.ndarray:
        return self.predict_features(stack_features(probs))

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "intercept": self.intercept.tolist(),
            "classes": self.classes.tolist(),
            "n_classes": self.n_classes,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Stacker:
        return cls(
            np.asarray(data["mean"], float),
            np.asarray(data["scale"], float),
            np.asarray(data["coef"], float),
            np.asarray(data["intercept"], float),
            np.asarray(data["classes"], int),
            int(data["n_classes"]),
        )


def fit_stacker(x: np.ndarray, y: np.ndarray, c: float, n_classes: int) -> Stacker:
    """Standardised features: log-probabilities span [-14, 0] and L-BFGS crawls unscaled."""
    # sklearn imported here: it is only needed when stacking runs.
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x)
    model = LogisticRegression(C=c, max_iter=2000).fit(scaler.transform(x), y)
    return Stacker(
        scaler.mean_,
        scaler.scale_,
        model.coef_,
        model.intercept_,
        model.classes_.astype(int),
        n_classes,
    )


@dataclass
class Stacking:
    """The stacking fits: in-sample, nested and test predictions, and the stream on demand."""

    in_sample: np.ndarray  # the full fit on its own rows (reported, never written)
    nested: np.ndarray | None  # each fold from a fit on the other folds
    test: np.ndarray
    model: Stacker
    states: list[FoldState]  # held-out side only until `stream()` fills the fitting side
    cross_fitted: Callable[[np.ndarray], np.ndarray]

    def stream(self) -> StepPredictions:
        """The stream later steps continue (built only when stacking is used: k(k-1) fits).

        Its OOF is cross-fitted, not in-sample: an in-sample regression with 8 x n_models x 8
        weights would flatter itself. The rows that fit fold k's later steps are cross-fitted
        within the other folds, as the whole OOF is for the test rows.
        """
        states = [replace(s, inner=self.cross_fitted(s.fit)) for s in self.states]
        oof = self.nested if self.nested is not None else self.in_sample
        return StepPredictions(oof, self.test, states)


def stacking(
    oof: Sequence[np.ndarray],
    test: Sequence[np.ndarray],
    y: np.ndarray,
    folds: np.ndarray,
    c: float,
    n_classes: int,
) -> Stacking:
    """Fit on every OOF row (for the test rows) and on each fold's other folds (nested)."""
    x_oof, x_test = stack_features(oof), stack_features(test)

    def fit(rows: np.ndarray) -> Stacker:
        return fit_stacker(x_oof[rows], y[rows], c, n_classes)

    def cross_fitted(rows: np.ndarray) -> np.ndarray:
        """Cross-fitted predictions of `rows` from fits on `rows` only (in-sample if one fold)."""
        index = np.flatnonzero(rows)
        inner = cross_fit(
            lambda f, h: fit(index[f]).predict_features(x_oof[index[h]]), folds[index]
        )
        return inner if inner is not None else fit(index).predict_features(x_oof[index])

    model = fit_stacker(x_oof, y, c, n_classes)  # not x_oof[all]: BLAS sums by memory layout
    in_sample = model.predict_features(x_oof)
    states, _ = fit_folds(fit, lambda m, rows: m.predict_features(x_oof[rows]), folds)
    nested = StepPredictions(in_sample, in_sample, states).nested()
    return Stacking(in_sample, nested, model.predict_features(x_test), model, states, cross_fitted)
