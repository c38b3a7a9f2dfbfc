"""Per-site label-shift adaptation (Saerens, Latinne & Decaestecker, 2002).

Each camera site sees its own mix of animals (a forest floor camera sees rodents, a clearing
sees antelope), but a classifier predicts as if every site had the training mix. Under label
shift p(x|y) stays fixed and only p(y) changes, so the site's class prior can be re-estimated
from the model's own (calibrated) predictions on that site with EM, without any label, and the
predictions re-weighted by prior_site(y) / prior_train(y).

Small sites give noisy EM estimates, so the M-step is a Dirichlet-MAP update that shrinks
toward the training prior with a pseudo-count `strength` (alpha):
    prior_site = (sum_i p'(y|x_i) + alpha * prior_train) / (n_site + alpha).
alpha = 0 is plain EM; alpha -> inf (`None` here) is no adaptation. alpha is chosen on OOF
predictions: train folds are grouped by site, so OOF rows are predictions on unseen sites,
exactly the situation of the test sites.

The "source prior" (the class mix the model's probabilities assume) is not simply the training
labels' frequencies: an OOF row of fold k comes from a model trained on the other folds, whose
mix differs from the whole set's when sites differ, and class-weighted losses tilt every model
toward rare classes. `source_priors` accounts for both; on the demo it is most of the gain.

Honesty: a fold's nested estimate runs `fit_sites` on the other folds' rows alone (see
chain.py), so the held fold is adapted from those rows' "test" source prior with a strength they
chose, and no label of the held fold enters. (An earlier version gave the held fold a prior that
divided by every label's frequency, its own fold's included: that leaked its labels.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kaggle_style.ensemble.base import RowFacts

# Pseudo-counts to try; a site of n images moves halfway to its EM estimate when n == alpha.
DEFAULT_STRENGTHS: tuple[float, ...] = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0)
PROB_FLOOR = 1e-12


def _site_index(sites: Sequence[object] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(unique site names, index of each row's site), so EM runs on all sites at once."""
    names, index = np.unique(np.asarray(sites).astype(str), return_inverse=True)
    return names, index.reshape(-1)


def _prepared(probs: np.ndarray) -> np.ndarray:
    probs = np.clip(np.asarray(probs, dtype=np.float64), PROB_FLOOR, None)
    return probs / probs.sum(axis=1, keepdims=True)


def reweight(probs: np.ndarray, row_priors: np.ndarray, source_prior: np.ndarray) -> np.ndarray:
    """p'(y|x) ∝ p(y|x) * prior_new(y) / prior_source(y), row by row (either may be per row)."""
    out = _prepared(probs) * (np.asarray(row_priors) / np.asarray(source_prior))
    return out / out.sum(axis=1, keepdims=True)


def source_priors(
    probs: np.ndarray, y: np.ndarray, folds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(per-row source prior of the OOF rows, source prior of test predictions).

    The labels' frequencies in the folds a row's model was trained on, times the tilt of the
    models' own marginal: mean OOF probability / label frequency, per class (class weights,
    calibration). Test predictions average models trained on every fold, so their source prior
    is the tilted frequency of all the labels, which is the mean OOF probability.
    """
    probs = _prepared(probs)
    y, folds = np.asarray(y, dtype=np.int64), np.asarray(folds)
    n_classes = probs.shape[1]
    freq = np.maximum(np.bincount(y, minlength=n_classes) / len(y), PROB_FLOOR)
    tilt = probs.mean(axis=0) / freq
    rows = np.empty_like(probs)
    for fold in np.unique(folds):
        held = folds == fold
        rest = y[~held] if (~held).any() else y
        rest_freq = np.bincount(rest, minlength=n_classes) / len(rest)
        rows[held] = np.maximum(rest_freq * tilt, PROB_FLOOR)
    rows /= rows.sum(axis=1, keepdims=True)
    test = freq * tilt
    return rows, test / test.sum()


def _per_row(prior: np.ndarray, n: int) -> np.ndarray:
    prior = np.asarray(prior, dtype=np.float64)
    return np.broadcast_to(prior, (n, prior.shape[-1])) if prior.ndim == 1 else prior


def _per_site(row_priors: np.ndarray, site_index: np.ndarray, n_sites: int) -> np.ndarray:
    """Each site's mean source prior (rows of one site share a fold, so they agree anyway)."""
    sums = np.stack(
        [
            np.bincount(site_index, weights=row_priors[:, k], minlength=n_sites)
            for k in range(row_priors.shape[1])
        ],
        axis=1,
    )
    means = sums / np.maximum(np.bincount(site_index, minlength=n_sites), 1)[:, None]
    return means / means.sum(axis=1, keepdims=True)


def em_priors(
    probs: np.ndarray,
    site_index: np.ndarray,
    n_sites: int,
    source_prior: np.ndarray,
    strength: float,
    tol: float = 1e-8,
    max_iter: int = 2000,
) -> np.ndarray:
    """(n_sites, n_classes) MAP-EM prior estimates; each site stops at its own convergence.

    `source_prior`: the class mix the probabilities assume, one for all rows or one per row
    (see `source_priors`). Sites are independent problems, so a converged site is frozen and
    the remaining iterations touch only the rows of sites still moving.
    """
    probs = _prepared(probs)
    site_source = _per_site(_per_row(source_prior, len(probs)), site_index, n_sites)
    counts = np.bincount(site_index, minlength=n_sites).astype(np.float64)
    order = np.argsort(site_index, kind="stable")  # rows grouped by site
    ratio = (probs / site_source[site_index])[order]  # p(y|x) / source prior, computed once
    starts = np.searchsorted(site_index[order], np.arange(n_sites))
    sizes = counts.astype(np.int64)
    priors = site_source.copy()
    active = np.flatnonzero(sizes > 0)
    gathered = 0  # how many sites the row gather below was built for
    for _ in range(max_iter):
        if not len(active):
            break
        if gathered != len(active):  # the first pass, or a site froze: shrink the rows
            gathered = len(active)
            rows = np.concatenate([np.arange(starts[s], starts[s] + sizes[s]) for s in active])
            local = np.repeat(np.arange(len(active)), sizes[active])
            cuts = np.r_[0, np.cumsum(sizes[active])[:-1]]
            sub = ratio[rows]
        adjusted = sub * priors[active][local]
        adjusted /= adjusted.sum(axis=1, keepdims=True)
        sums = np.add.reduceat(adjusted, cuts, axis=0)
        new = (sums + strength * site_source[active]) / (counts[active] + strength)[:, None]
        new = np.clip(new, PROB_FLOOR, None)
        new /= new.sum(axis=1, keepdims=True)
        change = np.max(np.abs(new - priors[active]), axis=1)
        priors[active] = new
        active = active[change >= tol]
    return priors


def adapt_site_priors(
    probs: np.ndarray,
    sites: Sequence[object] | np.ndarray,
    source_prior: np.ndarray,
    strength: float | None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(adapted probabilities, EM prior of each site); `strength=None` returns `probs` as they are.

    Uses no labels, so it can be applied to test sites as well as to OOF sites.
    """
    probs = np.asarray(probs, dtype=np.float64)
    names, index = _site_index(sites)
    site_source = _per_site(_per_row(source_prior, len(probs)), index, len(names))
    if strength is None or len(probs) == 0:
        return probs.copy(), dict(zip(names.tolist(), site_source, strict=True))
    if strength < 0:
        raise ValueError(f"strength must be >= 0, got {strength}")
    priors = em_priors(probs, index, len(names), source_prior, strength)
    adapted = reweight(probs, priors[index], site_source[index])
    return adapted, dict(zip(names.tolist(), priors, strict=True))


def _row_losses(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    return -np.log(np.clip(probs[np.arange(len(y)), y], PROB_FLOOR, None))


def _options(
    probs: np.ndarray,
    sites: Sequence[object] | np.ndarray,
    source_prior: np.ndarray,
    strengths: Sequence[float],
) -> list[np.ndarray]:
    """Probabilities without adaptation, then adapted with each strength."""
    adapted = [adapt_site_priors(probs, sites, source_prior, s)[0] for s in strengths]
    return [_prepared(probs), *adapted]


def strength_losses(
    probs: np.ndarray,
    y: np.ndarray,
    sites: Sequence[object] | np.ndarray,
    source_prior: np.ndarray,
    strengths: Sequence[float] = DEFAULT_STRENGTHS,
) -> np.ndarray:
    """(1 + len(strengths), n) per-row log losses; row 0 is no adaptation.

    Adapting a site never looks at labels, so the losses are computed once and any subset of
    rows (e.g. k-1 folds) can choose its strength from them.
    """
    y = np.asarray(y, dtype=np.int64)
    return np.stack([_row_losses(p, y) for p in _options(probs, sites, source_prior, strengths)])


def _best(losses: np.ndarray, strengths: Sequence[float]) -> float | None:
    best = int(np.argmin(losses.mean(axis=1)))  # ties go to the first: no adaptation
    return None if best == 0 else float(strengths[best - 1])


def choose_strength(
    probs: np.ndarray,
    y: np.ndarray,
    sites: Sequence[object] | np.ndarray,
    source_prior: np.ndarray,
    strengths: Sequence[float] = DEFAULT_STRENGTHS,
) -> tuple[float | None, dict[str, float]]:
    """(best strength, None meaning "no adaptation"; mean log loss of each option) on OOF rows."""
    losses = strength_losses(probs, y, sites, source_prior, strengths)
    means = losses.mean(axis=1)
    table = {"none": float(means[0])}
    table.update({f"{s:g}": float(m) for s, m in zip(strengths, means[1:], strict=True)})
    return _best(losses, strengths), table


@dataclass
class SiteFit:
    """A fitted site adaptation: what new rows (test sites, a fold's held sites) need."""

    strength: float | None  # None: no adaptation
    source_prior: np.ndarray  # class mix of a model trained on every fitting row
    grid: dict[str, float] = field(default_factory=dict)  # fitting rows' log loss per option
    priors: dict[str, np.ndarray] = field(default_factory=dict)  # EM prior of each fitting site

    @property
    def active(self) -> bool:
        return self.strength is not None


def fit_sites(
    probs: np.ndarray,
    rows: RowFacts,
    strengths: Sequence[float] = DEFAULT_STRENGTHS,
    force: bool = False,
) -> tuple[SiteFit, np.ndarray]:
    """(fit, adapted fitting rows): the strength chosen on labelled rows; `force` never picks none.

    Only the fitting rows' labels are read, so fitting on k-1 folds gives the held fold a source
    prior (the mean prediction of those rows) and a strength that no label of its own chose.
    """
    assert rows.y is not None and rows.folds is not None and rows.sites is not None  # fitting rows
    row_source, new_source = source_priors(probs, rows.y, rows.folds)
    strength, grid = choose_strength(probs, rows.y, rows.sites, row_source, strengths)
    if strength is None and force:
        finite = {k: v for k, v in grid.items() if k != "none"}
        strength = float(min(finite, key=finite.__getitem__))
    adapted, priors = adapt_site_priors(probs, rows.sites, row_source, strength)
    return SiteFit(strength, new_source, grid, priors), adapted


def apply_sites(fit: SiteFit, probs: np.ndarray, rows: RowFacts) -> np.ndarray:
    """Adapt new rows' sites (labels are never read)."""
    assert rows.sites is not None  # what the step needs
    return adapt_site_priors(probs, rows.sites, fit.source_prior, fit.strength)[0]


def site_prior_table(
    probs_before: np.ndarray,
    sites: Sequence[object] | np.ndarray,
    em: dict[str, np.ndarray],
    classes: tuple[str, ...],
    y: np.ndarray | None = None,
) -> dict[str, dict[str, Any]]:
    """Per site: images, mean prediction ("before"), EM prior ("after") and, with labels, the truth.

    This is what a report plots to show whether adaptation moved each site toward its real mix.
    """
    names, index = _site_index(sites)
    probs_before = np.asarray(probs_before, dtype=np.float64)
    table: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(names.tolist()):
        rows = index == i
        entry: dict[str, Any] = {
            "n": int(rows.sum()),
            "before": dict(zip(classes, map(float, probs_before[rows].mean(axis=0)), strict=True)),
            "after": dict(zip(classes, map(float, em[name]), strict=True)),
        }
        if y is not None:
            freq = np.bincount(np.asarray(y)[rows], minlength=len(classes)) / rows.sum()
            entry["true"] = dict(zip(classes, map(float, freq), strict=True))
        table[name] = entry
    return table
