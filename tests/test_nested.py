"""Label randomisation: a fold's nested predictions must not depend on any label of that fold.

For every second-stage step (blend weights, temperature, stacking, site adaptation, sequence
pooling, time adjustment, detection-aware stacking, and all of them chained), the ensemble is
fitted twice: once on the true labels, once with one fold's labels replaced. That fold's nested
predictions must not move (1e-12), while the other folds' do (the new labels reached their
fits). Then the whole chain in its shipped all-`auto` mode, where every choice (space, stacking,
each gate) is nested too. Positive controls: a deliberately leaky variant of each step, choices
made on all folds, and the old source-prior formula of site adaptation move that fold's
predictions under the same randomisation, so the test catches a leak.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pytest
from ensemble_world import MODELS, World, make_world, nested_site_adapt

from kaggle_style.ensemble import chain, run
from kaggle_style.ensemble.base import Inputs
from kaggle_style.ensemble.chain import StepPredictions, StepResult
from kaggle_style.ensemble.run import (
    EnsembleConfig,
    EnsembleResult,
    build_ensemble,
    fit_chain,
    has_choices,
)
from kaggle_style.ensemble.sites import (
    DEFAULT_STRENGTHS,
    adapt_site_priors,
    source_priors,
    strength_losses,
)
from kaggle_style.ensemble.steps import STEPS
from kaggle_style.metrics import log_loss

FOLD = 2  # the fold whose labels are replaced
# Each case switches one part of the chain on alone (then all of them): the fixed stages fitted
# before the per-row steps, then every step of the registry, by its title.
OFF = {"stacking": False, **{step.config_key: "off" for step in STEPS}}
BASE_STEPS = {
    "blend weights": {**OFF, "space": "prob", "temperature": False},
    "temperature": {**OFF, "space": "logprob"},
    "stacking": {**OFF, "space": "logprob", "stacking": True},
}
# Sequence pooling over a finer weight grid than the default (as this test has always run it).
TUNED = {"sequences": {"sequence_weights": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]}}
PER_ROW = {step.title: step for step in STEPS}
CASES = {
    **BASE_STEPS,
    **{
        title: {**OFF, "space": "logprob", step.config_key: "on", **TUNED.get(step.key, {})}
        for title, step in PER_ROW.items()
    },
    "whole chain": {
        "space": "logprob",
        "stacking": True,
        **{step.config_key: "on" for step in STEPS},
    },
}


def _applied(step: str, report: dict) -> bool:
    """The step under test really is in the chain (else the test would prove nothing)."""
    weights = np.array(list(report["weights"].values()))
    checks = {
        "blend weights": 0 < weights.max() < 1,
        "temperature": report["temperature"] != 1.0,
        "stacking": report["method"] == "stacking",
        **{title: report[step.key]["applied"] for title, step in PER_ROW.items()},
    }
    return all(checks.values()) if step == "whole chain" else checks[step]


@pytest.fixture(scope="module")
def world() -> World:
    return make_world(seed=0)


def _relabelled(inputs: Inputs, how: str) -> Inputs:
    """Fold FOLD's labels replaced: uniformly at random, or by each row's least likely class
    (the labels that most change what any fit seeing them would choose)."""
    held = inputs.folds == FOLD
    y = inputs.y.copy()
    if how == "random":
        y[held] = np.random.default_rng(1).integers(0, len(inputs.oof[0][0]), held.sum())
    else:
        y[held] = np.mean(inputs.oof, axis=0)[held].argmin(axis=1)
    assert (y[held] != inputs.y[held]).mean() > 0.5
    return replace(inputs, y=y)


def _fit(world: World, step: str, how: str | None = None) -> EnsembleResult:
    cfg = EnsembleConfig(runs=[m[0] for m in MODELS], n_starts=1, **CASES[step])
    inputs = world.inputs()
    return build_ensemble(cfg, inputs if how is None else _relabelled(inputs, how))


_TRUE: dict[str, EnsembleResult] = {}


def _true_labels(world: World, step: str) -> EnsembleResult:
    if step not in _TRUE:
        _TRUE[step] = _fit(world, step)
    return _TRUE[step]


@pytest.mark.parametrize("how", ["random", "contrary"])
@pytest.mark.parametrize("step", list(CASES))
def test_a_folds_nested_predictions_ignore_its_own_labels(world: World, step: str, how: str):
    before = _true_labels(world, step)
    assert _applied(step, before.report.to_dict())
    after = _fit(world, step, how)
    held = world.folds == FOLD
    assert before.nested is not None and after.nested is not None
    assert np.abs(after.nested[held] - before.nested[held]).max() <= 1e-12
    assert np.abs(after.nested[~held] - before.nested[~held]).max() > 1e-4


def _leaky_fold_split(folds: np.ndarray) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Each fold fitted on every row, its own included: the classic nested-CV mistake."""
    for fold in np.unique(folds):
        held = folds == fold
        yield int(fold), np.ones_like(held), held


def _leaky_run_step(stream, rows, test_rows, fit, apply) -> StepResult:
    """Each fold's step fitted on every row, the fold's own labels included."""
    honest = chain.run_step(stream, rows, test_rows, fit, apply)
    states = []
    for state in stream.folds:
        everything = np.empty_like(stream.oof)
        everything[state.fit], everything[state.held] = state.inner, state.out
        params, _ = fit(everything, rows)
        out = apply(params, state.out, rows.take(state.held).unlabelled())
        states.append(replace(state, out=out))
    return StepResult(
        StepPredictions(honest.stream.oof, honest.stream.test, states),
        honest.params,
        honest.fold_params,
    )


@pytest.mark.parametrize("step", [s for s in CASES if s != "whole chain"])
def test_the_randomisation_catches_a_leaky_step(
    world: World, step: str, monkeypatch: pytest.MonkeyPatch
):
    if step in BASE_STEPS:
        monkeypatch.setattr(chain, "fold_split", _leaky_fold_split)
    else:
        monkeypatch.setattr(run, "run_step", _leaky_run_step)
    before, after = _fit(world, step), _fit(world, step, "contrary")
    held = world.folds == FOLD
    assert np.abs(after.nested[held] - before.nested[held]).max() > 1e-6


def _old_nested_site_adapt(probs, y, sites, folds) -> np.ndarray:
    """The leaky estimate this project shipped before: every fold's source prior divided by the
    frequencies of ALL labels (source_priors on every row), strength chosen on the other folds."""
    source = source_priors(probs, y, folds)[0]
    losses = strength_losses(probs, y, sites, source, DEFAULT_STRENGTHS)
    out = np.empty_like(probs)
    for fold in np.unique(folds):
        held = folds == fold
        best = int(np.argmin(losses[:, ~held].mean(axis=1)))
        strength = None if best == 0 else DEFAULT_STRENGTHS[best - 1]
        out[held] = adapt_site_priors(probs, sites, source, strength)[0][held]
    return out


def test_site_adaptation_no_longer_leaks_through_the_source_prior(world: World):
    """The issue's reproduction on one model's OOF: the old formula moves the randomised fold's
    adapted predictions; the fixed nested estimate does not move them at all."""
    inputs = world.inputs()
    probs, sites, folds = inputs.oof[0], inputs.oof_sites, inputs.folds
    y_random = _relabelled(inputs, "random").y
    held = folds == FOLD
    old = [_old_nested_site_adapt(probs, y, sites, folds) for y in (inputs.y, y_random)]
    new = [nested_site_adapt(probs, y, sites, folds).probs for y in (inputs.y, y_random)]
    assert np.abs(old[1][held] - old[0][held]).max() > 1e-3
    assert np.abs(new[1][held] - new[0][held]).max() <= 1e-12
    assert np.abs(new[1][~held] - new[0][~held]).max() > 1e-4


def _auto(world: World, how: str | None = None, fit=build_ensemble) -> EnsembleResult:
    """The shipped configuration: every choice (space, stacking, each step's gate) on `auto`."""
    cfg = EnsembleConfig(runs=[m[0] for m in MODELS], n_starts=1)
    assert has_choices(cfg) and cfg.space == cfg.stacking == "auto"
    assert all(step.mode(cfg) == "auto" for step in STEPS)
    inputs = world.inputs()
    if how is None and fit is build_ensemble:
        if "auto" not in _TRUE:
            _TRUE["auto"] = fit(cfg, inputs)
        return _TRUE["auto"]
    return fit(cfg, inputs if how is None else _relabelled(inputs, how))


@pytest.mark.heavy
@pytest.mark.parametrize("how", ["random", "contrary"])
def test_the_whole_chain_in_auto_choices_included_ignores_a_folds_labels(world: World, how: str):
    """Each fold's final nested predictions come from the chain fitted AND chosen without it."""
    before, after = _auto(world), _auto(world, how)
    held = world.folds == FOLD
    assert before.report.choices_per_fold is not None
    assert np.abs(after.nested[held] - before.nested[held]).max() <= 1e-12
    assert np.abs(after.nested[~held] - before.nested[~held]).max() > 1e-4
    assert before.report.final.nested.log_loss == pytest.approx(
        log_loss(world.oof.y, before.nested)
    )


def test_choices_made_on_every_fold_are_caught_by_the_randomisation(world: World):
    """Positive control: the chain's own nested figure (choices made on all folds, the old
    final figure) moves the relabelled fold, because a choice saw its labels."""
    before, after = _auto(world, fit=fit_chain), _auto(world, "contrary", fit=fit_chain)
    held = world.folds == FOLD
    assert np.abs(after.nested[held] - before.nested[held]).max() > 1e-6
