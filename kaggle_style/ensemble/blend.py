"""Weighted blends of model runs, temperature scaling, and `Blend`: the fitted second stage.

Blending spaces:
- "prob": weighted arithmetic mean of probabilities. A mixture never gets more confident than
  its members, so it is robust when one model is badly over-confident.
- "logprob": weighted geometric mean (sum of weighted log-probabilities, renormalised). Models
  that agree reinforce each other; usually better when members are well calibrated.

Temperature scaling then fits one scalar T on the blend's logits, so its confidence matches its
accuracy. `Blend.from_report` rebuilds from ensemble.json every step the ensemble applied, so
`predict` on a new deployment gives what the ensemble stage gives on the test rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.optimize import minimize, minimize_scalar
from scipy.special import log_softmax, logsumexp, softmax

from kaggle_style.ensemble.base import LOG_FLOOR, EnsembleError, RowFacts, log_probs
from kaggle_style.ensemble.stacking import Stacker
from kaggle_style.ensemble.steps import STEPS, Step

if TYPE_CHECKING:
    from kaggle_style.ensemble.schema import EnsembleReport

LOG_T_BOUNDS = (-4.0, 4.0)  # temperature between ~0.02 and ~55


def _logs(probs: Sequence[np.ndarray]) -> np.ndarray:
    return log_probs(np.stack([np.asarray(p, np.float64) for p in probs]))


def blend_logits(probs: Sequence[np.ndarray], weights: np.ndarray, space: str) -> np.ndarray:
    """Log of the blended probabilities (up to a per-row constant in "logprob" space)."""
    weights = np.asarray(weights, dtype=np.float64)
    if space == "prob":
        mixed = np.einsum("m,mnk->nk", weights, np.stack(probs).astype(np.float64))
        return np.log(np.clip(mixed, LOG_FLOOR, None))
    if space == "logprob":
        return np.einsum("m,mnk->nk", weights, _logs(probs))
    raise ValueError(f"space must be 'prob' or 'logprob', not {space!r}")


@dataclass
class Blend:
    """Weights over models in a space, a temperature, and the per-row steps that were applied.

    A stacker, when stacking won, replaces the weights and the temperature. `steps` holds each
    applied step with its fitted params, in the order of `STEPS`.
    """

    space: str
    weights: np.ndarray
    temperature: float = 1.0
    stacker: Stacker | None = None
    steps: list[tuple[Step, Any]] = field(default_factory=list)

    def logits(self, probs: Sequence[np.ndarray]) -> np.ndarray:
        return blend_logits(probs, self.weights, self.space)

    def predict(self, probs: Sequence[np.ndarray]) -> np.ndarray:
        """The blended probabilities, before any per-row step."""
        if self.stacker is not None:
            return self.stacker.predict(probs)
        return softmax(self.logits(probs) / self.temperature, axis=1)

    def params(self, key: str) -> Any:
        """The fitted params of an applied step, None when it was not applied."""
        return next((p for s, p in self.steps if s.key == key), None)

    def missing(self, rows: RowFacts) -> list[Step]:
        """The applied steps that `rows` lack the information for (they are skipped)."""
        return [step for step, _ in self.steps if step.missing(rows)]

    def apply(self, probs: Sequence[np.ndarray], rows: RowFacts | None = None) -> np.ndarray:
        """The ensemble's prediction for new rows: blend, then every applied step it can do."""
        rows = RowFacts() if rows is None else rows.unlabelled()
        rows = replace(rows, members=np.stack([np.asarray(p, np.float64) for p in probs], axis=1))
        out = self.predict(probs)
        for step, params in self.steps:
            if not step.missing(rows):
                out = step.apply(params, out, rows)
        return out

    @classmethod
    def from_report(cls, report: EnsembleReport) -> Blend:
        """The second stage an ensemble.json describes (the steps it applied, nothing else)."""
        blend = cls(
            report.space,
            np.asarray(list(report.weights.values()), dtype=float),
            report.temperature or 1.0,
        )
        if report.stacking is not None and report.stacking.used:
            if report.stacking.model is None:
                raise EnsembleError(
                    "ensemble.json: its stacking model is not saved (an older "
                    "version wrote it); rerun `kaggle-style ensemble`"
                )
            blend.stacker = Stacker.from_dict(report.stacking.model)
        for step in STEPS:
            record = report.step(step.key)
            if record is not None and record.applied:
                try:
                    blend.steps.append((step, step.load(record.details())))
                except (KeyError, TypeError, ValueError) as err:
                    raise EnsembleError(
                        f"ensemble.json: step {step.key!r} lacks its fit "
                        f"({err}); rerun `kaggle-style ensemble`"
                    ) from None
        return blend


def _weight_objective(
    probs: Sequence[np.ndarray], y: np.ndarray, space: str
) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """Log loss of softmax(theta)-weighted blends and its gradient in theta."""
    rows = np.arange(len(y))
    if space == "prob":
        true_p = np.stack([np.asarray(p, np.float64)[rows, y] for p in probs])  # (m, n)

        def loss_and_grad_w(w: np.ndarray) -> tuple[float, np.ndarray]:
            mixed = np.clip(w @ true_p, LOG_FLOOR, None)
            return float(-np.mean(np.log(mixed))), -np.mean(true_p / mixed, axis=1)
    else:
        logs = _logs(probs)  # (m, n, k)
        true_log = logs[:, rows, y]

        def loss_and_grad_w(w: np.ndarray) -> tuple[float, np.ndarray]:
            z = np.einsum("m,mnk->nk", w, logs)
            lse = logsumexp(z, axis=1)
            p = np.exp(z - lse[:, None])
            loss = float(-np.mean(z[rows, y] - lse))
            grad = -np.mean(true_log - np.einsum("nk,mnk->mn", p, logs), axis=1)
            return loss, grad

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w = softmax(theta)
        loss, g = loss_and_grad_w(w)
        return loss, w * (g - w @ g)

    return objective


def fit_weights(
    probs: Sequence[np.ndarray], y: np.ndarray, space: str, n_starts: int = 3, seed: int = 0
) -> np.ndarray:
    """Non-negative weights summing to 1 that minimise log loss (before temperature).

    Softmax-parameterised L-BFGS from equal weights and random starts; equal weights and each
    single model are candidates too, so the blend is never worse than the best single model.
    (Both objectives are convex in the weights, so extra starts only guard against a stalled
    optimiser, not against local minima.)
    """
    n_models = len(probs)
    y = np.asarray(y, dtype=np.int64)
    if n_models == 1:
        return np.ones(1)
    objective = _weight_objective(probs, y, space)
    rng = np.random.default_rng(seed)
    candidates = [np.full(n_models, 1.0 / n_models), *np.eye(n_models)]
    for start in range(max(1, n_starts)):
        theta0 = np.zeros(n_models) if start == 0 else rng.normal(0.0, 1.5, n_models)
        result = minimize(objective, theta0, jac=True, method="L-BFGS-B")
        candidates.append(softmax(result.x))
    losses = [_objective_at(objective, w) for w in candidates]
    best = candidates[int(np.argmin(losses))]
    best = np.where(best < 1e-9, 0.0, best)
    return best / best.sum()


def _objective_at(
    objective: Callable[[np.ndarray], tuple[float, np.ndarray]], w: np.ndarray
) -> float:
    """The objective at weights `w` (vertices included, where softmax cannot reach)."""
    with np.errstate(divide="ignore"):
        return objective(np.log(np.clip(w, 1e-300, None)))[0]


def nll(logits: np.ndarray, y: np.ndarray) -> float:
    """Mean log loss of softmax(logits): the objective every second-stage fit minimises."""
    return float(-np.mean(log_softmax(logits, axis=1)[np.arange(len(y)), y]))


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """Temperature scaling: the one T > 0 (fitted on log T) that minimises log loss of
    softmax(logits / T), so the blend's confidence matches its accuracy; 1 if no gain."""
    y = np.asarray(y, dtype=np.int64)
    result = minimize_scalar(
        lambda log_t: nll(logits / np.exp(log_t), y), bounds=LOG_T_BOUNDS, method="bounded"
    )
    t = float(np.exp(result.x))
    return t if nll(logits / t, y) < nll(logits, y) else 1.0


def fit_blend(
    probs: Sequence[np.ndarray],
    y: np.ndarray,
    space: str,
    temperature: bool = True,
    n_starts: int = 3,
    seed: int = 0,
) -> Blend:
    """Weights first, then one temperature on the blend (the order the report shows)."""
    weights = fit_weights(probs, y, space, n_starts, seed)
    blend = Blend(space=space, weights=weights)
    if temperature:
        blend.temperature = fit_temperature(blend.logits(probs), y)
    return blend
