"""Honest nested estimates for a chain of second-stage steps.

The test predictions come from steps fitted on every OOF row. The nested estimate replays that
for each fold k with fold k as the test set: every step is fitted on the other folds' rows (on
predictions made by the earlier steps' fits on those same rows) and applied to fold k's nested
predictions, exactly as the in-sample fit is applied to the test rows. A step is applied to held
rows through `RowFacts.unlabelled()`, so no label of fold k can reach fold k's predictions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from kaggle_style.ensemble.base import RowFacts


def fold_split(folds: np.ndarray) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(fold, rows that fit it, its held-out rows) for every fold; nothing with one fold."""
    folds = np.asarray(folds)
    unique = np.unique(folds)
    if len(unique) < 2:
        return
    for fold in unique:
        held = folds == fold
        yield int(fold), ~held, held


def cross_fit(
    fit_predict: Callable[[np.ndarray, np.ndarray], np.ndarray], folds: np.ndarray
) -> np.ndarray | None:
    """Held-out predictions: `fit_predict(fit_rows, held_rows)` for every fold in turn.

    None when there is only one fold (nothing to hold out).
    """
    out: np.ndarray | None = None
    for _, fit, held in fold_split(folds):
        pred = fit_predict(fit, held)
        if out is None:
            out = np.empty((len(fit), pred.shape[1]))
        out[held] = pred
    return out


@dataclass
class FoldState:
    """One fold's view of the chain: predictions of its fitting rows and of its held rows."""

    fold: int
    fit: np.ndarray  # mask: the other folds' rows, which fit this fold's steps
    held: np.ndarray  # mask: this fold's rows
    inner: np.ndarray  # predictions of the fit rows, from fits on those rows alone
    out: np.ndarray  # nested predictions of the held rows


@dataclass
class StepPredictions:
    """Predictions carried through the steps: in-sample OOF, test, and every fold's nested view."""

    oof: np.ndarray
    test: np.ndarray
    folds: list[FoldState]  # empty with one fold: no nested estimate

    def nested(self) -> np.ndarray | None:
        if not self.folds:
            return None
        out = np.empty((len(self.folds[0].held), self.folds[0].out.shape[1]))
        for state in self.folds:
            out[state.held] = state.out
        return out


def fit_folds(
    fit: Callable[[np.ndarray], Any],
    predict: Callable[[Any, np.ndarray], np.ndarray],
    folds: np.ndarray,
) -> tuple[list[FoldState], list[Any]]:
    """Each fold's state and model: `fit(fit_rows)`, then `predict(model, rows)` on both sides."""
    states, models = [], []
    for fold, fit_rows, held in fold_split(folds):
        model = fit(fit_rows)
        states.append(
            FoldState(fold, fit_rows, held, predict(model, fit_rows), predict(model, held))
        )
        models.append(model)
    return states, models


def fixed_stream(oof: np.ndarray, test: np.ndarray, folds: np.ndarray) -> StepPredictions:
    """A stream of predictions nothing was fitted on (one model's OOF as it is)."""
    states = [FoldState(f, fit, held, oof[fit], oof[held]) for f, fit, held in fold_split(folds)]
    return StepPredictions(oof, test, states)


Fit = Callable[[np.ndarray, RowFacts], tuple[Any, np.ndarray]]  # (params, fitted rows' output)
Apply = Callable[[Any, np.ndarray, RowFacts], np.ndarray]


@dataclass
class StepResult:
    stream: StepPredictions  # the stream after the step
    params: Any  # the in-sample fit: what the test rows (and `predict`) use
    fold_params: dict[str, Any]  # each fold's fit, on the other folds' rows


def run_step(
    stream: StepPredictions, rows: RowFacts, test_rows: RowFacts, fit: Fit, apply: Apply
) -> StepResult:
    """Fit on all OOF rows for the test rows; fit on k-1 folds for each fold's nested rows."""
    params, oof = fit(stream.oof, rows)
    test = apply(params, stream.test, test_rows.unlabelled())
    states, fold_params = [], {}
    for state in stream.folds:
        fold_fit, inner = fit(state.inner, rows.take(state.fit))
        out = apply(fold_fit, state.out, rows.take(state.held).unlabelled())
        states.append(replace(state, inner=inner, out=out))
        fold_params[str(state.fold)] = fold_fit
    return StepResult(StepPredictions(oof, test, states), params, fold_params)
