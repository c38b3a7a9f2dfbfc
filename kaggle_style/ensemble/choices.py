"""Every choice nested: for each fold, the whole second stage is rerun on the other folds.

The chain makes choices on the nested log loss of its folds: the blending space, stacking or the
weighted blend, and each step's `auto` gate. Made on all folds, a choice has seen the labels of
the fold it is then applied to, so the nested figure of the chosen chain is optimistic. Here each
fold k is predicted by the same code run on the other folds alone, with fold k as its test rows:
every fit AND every choice is made without fold k's labels. The in-sample choice (all folds)
still makes the test predictions; this only gives the honest figure and each fold's choices.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from kaggle_style.ensemble.chain import fold_split
from kaggle_style.ensemble.steps import STEPS

if TYPE_CHECKING:
    from kaggle_style.ensemble.config import EnsembleConfig
    from kaggle_style.ensemble.inputs import Inputs
    from kaggle_style.ensemble.run import EnsembleResult


def has_choices(cfg: EnsembleConfig) -> bool:
    """Whether anything is decided on the data (else the chain's nested figure is honest)."""
    return (
        cfg.space == "auto"
        or cfg.stacking == "auto"
        or any(step.mode(cfg) == "auto" for step in STEPS)
    )


def choices_of(result: EnsembleResult) -> dict[str, Any]:
    """What a fit of the chain chose, as the report lists it per fold."""
    report = result.report
    return {
        "space": report.space,
        "method": report.method,
        "applied": [key for key, record in report.steps.items() if record.applied],
    }


def nested_choices(
    cfg: EnsembleConfig,
    inputs: Inputs,
    fit_chain: Callable[[EnsembleConfig, Inputs], Any],
) -> tuple[np.ndarray | None, list[dict[str, Any]]]:
    """(each fold's predictions from the chain fitted and chosen on the other folds, each fold's
    choices); (None, []) with one fold."""
    out: np.ndarray | None = None
    per_fold = []
    for fold, _, held in fold_split(inputs.folds):
        result = fit_chain(cfg, inputs.hold_out(fold))
        if out is None:
            out = np.empty((len(inputs.y), result.test.shape[1]))
        out[held] = result.test
        per_fold.append({"fold": fold, **choices_of(result)})
    return out, per_fold
