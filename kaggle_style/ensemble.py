"""Blend model runs on their OOF predictions: weights, then temperature, then site adaptation.

Every fitted step is reported twice: in-sample (fitted and scored on all OOF rows, what the
test predictions use) and NESTED (fitted on k-1 folds, scored on the held-out fold, every fold
in turn). Folds are grouped by site, so the nested number is the honest estimate of a blend on
unseen sites; the in-sample one is optimistic by however much the blend overfits.

Blending spaces:
- "prob": weighted arithmetic mean of probabilities. A mixture never gets more confident than
  its members, so it is robust when one model is badly over-confident.
- "logprob": weighted geometric mean (sum of weighted log-probabilities, renormalised). Models
  that agree reinforce each other; usually better when members are well calibrated.
- "auto": whichever has the lower nested log loss (after temperature scaling). Picking the
  better of two makes that one nested number slightly optimistic; the choice is reported.

Optional stacking (multinomial logistic regression on the models' log-probabilities, fitted
fold-wise) replaces weighted averaging only when its nested log loss is lower.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy.optimize import minimize, minimize_scalar
from scipy.special import log_softmax, logsumexp, softmax

from kaggle_style.config import add_config_arguments, config_dict, resolve_config
from kaggle_style.constants import (
    CLASSES,
    CONFIG_FILE,
    ENSEMBLE_FILE,
    FOLD_COL,
    ID_COL,
    LABEL_COL,
    METRICS_FILE,
    OOF_FILE,
    SITE_COL,
    TEST_FEATURES,
    TEST_FILE,
    TRAIN_FEATURES,
    TRAIN_LABELS,
)
from kaggle_style.data.tables import TableError, read_features, read_labels
from kaggle_style.io import git_commit, write_json, write_yaml
from kaggle_style.metrics import log_loss, score
from kaggle_style.predictions import (
    PredictionError,
    align,
    few_ids,
    make_frame,
    probs_of,
    read_predictions,
    write_predictions,
)
from kaggle_style.site_adapt import (
    DEFAULT_STRENGTHS,
    adapt_site_priors,
    choose_strength,
    nested_site_adapt,
    site_prior_table,
    source_priors,
)

LOG_FLOOR = 1e-15  # probabilities are floored before a log so one zero cannot give -inf
STACK_FLOOR = 1e-6  # stacking features: log-probabilities bounded to [log 1e-6, 0]
LOG_T_BOUNDS = (-4.0, 4.0)  # temperature between ~0.02 and ~55
SUMMARY_KEYS = ("log_loss", "accuracy", "f1_micro", "f1_macro", "f1_weighted")


class EnsembleError(ValueError):
    """Runs that cannot be blended as given."""


@dataclass
class EnsembleConfig:
    """What `kaggle-style ensemble` blends and how; every key can be set in configs/ensemble.yaml.

    `labels`, `train_features` (sites of the OOF ids) and `features` (sites of the test ids)
    default to the DrivenData files inside `data`.
    """

    runs: list[str] = field(default_factory=list)  # run folders, each with oof.csv + test.csv
    data: str = "data/demo"  # DrivenData folder: the defaults of labels and the site tables
    labels: str | None = None  # train_labels.csv
    out: str | None = None  # ensemble run folder to write
    space: Literal["prob", "logprob", "auto"] = "auto"
    temperature: bool = True
    stacking: bool | Literal["auto"] = "auto"  # True: always use; "auto": only if nested wins
    stacking_c: float = 1.0  # inverse L2 strength of the stacking regression
    # YAML reads a bare off/on as false/true: both spellings are accepted.
    site_adapt: Literal["off", "auto", "on"] | bool = "auto"
    site_strengths: list[float] = field(default_factory=lambda: list(DEFAULT_STRENGTHS))
    features: str | None = None  # test_features.csv: sites of the test ids
    train_features: str | None = None  # train_features.csv: sites of the OOF ids
    n_starts: int = 3  # optimiser starts for the weights (equal weights + random)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.site_adapt is True:
            self.site_adapt = "on"
        elif self.site_adapt is False:
            self.site_adapt = "off"

    def labels_path(self) -> Path:
        return Path(self.labels) if self.labels else Path(self.data) / TRAIN_LABELS

    def train_features_path(self) -> Path:
        if self.train_features:
            return Path(self.train_features)
        return Path(self.data) / TRAIN_FEATURES

    def test_features_path(self) -> Path:
        return Path(self.features) if self.features else Path(self.data) / TEST_FEATURES


# ----------------------------------------------------------------------------- blending


@dataclass
class Blend:
    """A fitted weighted average: the weights are over models, in the given space."""

    space: str
    weights: np.ndarray
    temperature: float = 1.0

    def logits(self, probs: Sequence[np.ndarray]) -> np.ndarray:
        return blend_logits(probs, self.weights, self.space)

    def predict(self, probs: Sequence[np.ndarray]) -> np.ndarray:
        return softmax(self.logits(probs) / self.temperature, axis=1)


def _logs(probs: Sequence[np.ndarray]) -> np.ndarray:
    return np.log(np.clip(np.stack([np.asarray(p, np.float64) for p in probs]), LOG_FLOOR, 1.0))


def blend_logits(probs: Sequence[np.ndarray], weights: np.ndarray, space: str) -> np.ndarray:
    """Log of the blended probabilities (up to a per-row constant in "logprob" space)."""
    weights = np.asarray(weights, dtype=np.float64)
    if space == "prob":
        mixed = np.einsum("m,mnk->nk", weights, np.stack(probs).astype(np.float64))
        return np.log(np.clip(mixed, LOG_FLOOR, None))
    if space == "logprob":
        return np.einsum("m,mnk->nk", weights, _logs(probs))
    raise ValueError(f"space must be 'prob' or 'logprob', not {space!r}")


def _nll(logits: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(log_softmax(logits, axis=1)[np.arange(len(y)), y]))


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


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The T > 0 (fitted on log T) that minimises log loss of softmax(logits / T); 1 if no gain."""
    y = np.asarray(y, dtype=np.int64)
    result = minimize_scalar(
        lambda log_t: _nll(logits / np.exp(log_t), y), bounds=LOG_T_BOUNDS, method="bounded"
    )
    t = float(np.exp(result.x))
    return t if _nll(logits / t, y) < _nll(logits, y) else 1.0


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


def cross_fit(
    fit_predict: Callable[[np.ndarray, np.ndarray], np.ndarray], folds: np.ndarray
) -> np.ndarray | None:
    """Held-out predictions: `fit_predict(train_rows, held_rows)` for every fold in turn.

    None when there is only one fold (nothing to hold out).
    """
    folds = np.asarray(folds)
    unique = np.unique(folds)
    if len(unique) < 2:
        return None
    out: np.ndarray | None = None
    for fold in unique:
        held = folds == fold
        pred = fit_predict(~held, held)
        if out is None:
            out = np.empty((len(folds), pred.shape[1]))
        out[held] = pred
    return out


# ----------------------------------------------------------------------------- stacking


def _stack_features(probs: Sequence[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.log(np.clip(p, STACK_FLOOR, 1.0)) for p in probs], axis=1)


def _fit_stacker(x: np.ndarray, y: np.ndarray, c: float) -> Any:
    """Standardised features: log-probabilities span [-14, 0] and L-BFGS crawls unscaled."""
    # sklearn imported here: it is only needed when stacking runs.
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000)).fit(x, y)


def _stack_predict(model: Any, x: np.ndarray, n_classes: int) -> np.ndarray:
    """Full-width probabilities even when a fold's training rows lacked a class."""
    out = np.full((len(x), n_classes), STACK_FLOOR)
    out[:, model[-1].classes_] = model.predict_proba(x)
    return out / out.sum(axis=1, keepdims=True)


# ----------------------------------------------------------------------------- reporting


def summary(y: np.ndarray, probs: np.ndarray | None) -> dict[str, float] | None:
    """The few numbers of one table cell (the full score goes to metrics.json)."""
    if probs is None:
        return None
    full = score(y, probs)
    return {k: float(full[k]) for k in SUMMARY_KEYS}


def format_table(rows: list[dict[str, Any]]) -> str:
    """The printed comparison: in-sample and nested log loss side by side."""
    width = max(28, *(len(r["name"]) + 2 for r in rows))
    head = (f"{'':<{width}}{'log loss':>10}{'nested':>10}{'accuracy':>10}"
            f"{'F1 micro':>10}{'F1 macro':>10}{'F1 wtd':>10}")
    lines = [head, "-" * len(head)]
    for row in rows:
        ins, nested = row["in_sample"], row["nested"]
        nested_text = f"{nested['log_loss']:>10.4f}" if nested else f"{'-':>10}"
        lines.append(
            f"{row['name']:<{width}}{ins['log_loss']:>10.4f}{nested_text}{ins['accuracy']:>10.3f}"
            f"{ins['f1_micro']:>10.3f}{ins['f1_macro']:>10.3f}{ins['f1_weighted']:>10.3f}"
        )
    return "\n".join(lines)


# ----------------------------------------------------------------------------- inputs


@dataclass
class Inputs:
    """Aligned OOF and test probabilities of every run, with labels, folds and (maybe) sites."""

    names: list[str]
    oof_ids: np.ndarray
    test_ids: np.ndarray
    oof: list[np.ndarray]
    test: list[np.ndarray]
    y: np.ndarray
    folds: np.ndarray
    oof_sites: np.ndarray | None = None
    test_sites: np.ndarray | None = None
    site_note: str = ""


def _run_names(runs: Sequence[str]) -> list[str]:
    names = [Path(r).name or str(r) for r in runs]
    return names if len(set(names)) == len(names) else [str(r) for r in runs]


def _sites_for(path: Path, ids: np.ndarray, what: str) -> np.ndarray:
    table = read_features(path).set_index(ID_COL)[SITE_COL]
    missing = [i for i in ids if i not in table.index]
    if missing:
        raise EnsembleError(f"{path}: no site for {len(missing)} {what} id(s): {few_ids(missing)}")
    return table.loc[ids].to_numpy().astype(str)


def load_inputs(cfg: EnsembleConfig) -> Inputs:
    """Read every run's oof.csv and test.csv, check they line up, attach labels and sites."""
    if not cfg.runs:
        raise EnsembleError("no runs to ensemble: give run folders or `runs:` in the config")
    names = _run_names(cfg.runs)
    oof_frames, test_frames = {}, {}
    for name, run in zip(names, cfg.runs, strict=True):
        folder = Path(run)
        for file in (OOF_FILE, TEST_FILE):
            if not (folder / file).is_file():
                raise EnsembleError(f"run {name}: {folder / file} not found")
        oof_frames[name] = read_predictions(folder / OOF_FILE, require_fold=True)
        test_frames[name] = read_predictions(folder / TEST_FILE)
    try:
        oof_frames = align(oof_frames)
    except PredictionError as err:
        raise EnsembleError(f"OOF files ({OOF_FILE}): {err}") from err
    try:
        test_frames = align(test_frames, check_folds=False)
    except PredictionError as err:
        raise EnsembleError(f"test files ({TEST_FILE}): {err}") from err
    first_oof, first_test = oof_frames[names[0]], test_frames[names[0]]
    oof_ids = first_oof[ID_COL].to_numpy().astype(str)
    labels_path = cfg.labels_path()
    labels = read_labels(labels_path).set_index(ID_COL)[LABEL_COL]
    unlabelled = [i for i in oof_ids if i not in labels.index]
    if unlabelled:
        raise EnsembleError(
            f"{labels_path}: no label for {len(unlabelled)} OOF id(s): {few_ids(unlabelled)}"
        )
    class_index = {c: i for i, c in enumerate(CLASSES)}
    inputs = Inputs(
        names=names,
        oof_ids=oof_ids,
        test_ids=first_test[ID_COL].to_numpy().astype(str),
        oof=[probs_of(oof_frames[n]) for n in names],
        test=[probs_of(test_frames[n]) for n in names],
        y=labels.loc[oof_ids].map(class_index).to_numpy().astype(np.int64),
        folds=first_oof[FOLD_COL].to_numpy(),
    )
    if cfg.site_adapt != "off":
        _attach_sites(cfg, inputs)
    return inputs


def _attach_sites(cfg: EnsembleConfig, inputs: Inputs) -> None:
    """Sites of OOF and test ids; for "auto", missing site tables only switch adaptation off."""
    train_path, test_path = cfg.train_features_path(), cfg.test_features_path()
    absent = [str(p) for p in (train_path, test_path) if not p.is_file()]
    if absent:
        note = f"no site table ({', '.join(absent)} not found; set train_features / features)"
        if cfg.site_adapt == "on":
            raise EnsembleError(f"site_adapt is on but there is {note}")
        inputs.site_note = note
        return
    try:
        inputs.oof_sites = _sites_for(train_path, inputs.oof_ids, "OOF")
        inputs.test_sites = _sites_for(test_path, inputs.test_ids, "test")
    except TableError as err:
        raise EnsembleError(str(err)) from err


# ----------------------------------------------------------------------------- the stage


@dataclass
class EnsembleResult:
    oof: np.ndarray  # final OOF probabilities written to oof.csv
    test: np.ndarray
    nested: np.ndarray | None  # final nested OOF probabilities (None with one fold)
    report: dict[str, Any]


@dataclass
class NestedBlend:
    """Nested predictions of one blending space: before and after temperature, per-fold fits."""

    untempered: np.ndarray | None
    tempered: np.ndarray | None
    fits: list[dict[str, Any]]


def _choose_space(cfg: EnsembleConfig, inputs: Inputs) -> tuple[str, dict[str, float], NestedBlend]:
    """The blending space, the log loss that chose it for each space tried, its nested fits."""
    spaces = ["prob", "logprob"] if cfg.space == "auto" else [cfg.space]
    y, oof = inputs.y, inputs.oof
    nested = {space: _nested_stages(cfg, inputs, space) for space in spaces}
    losses: dict[str, float] = {}
    for space in spaces:
        if nested[space].tempered is not None:
            losses[space] = log_loss(y, nested[space].tempered)
        else:  # one fold: no nested estimate, so the in-sample fit has to decide
            blend = fit_blend(oof, y, space, cfg.temperature, cfg.n_starts, cfg.seed)
            losses[space] = log_loss(y, blend.predict(oof))
    chosen = min(spaces, key=losses.__getitem__)  # ties: "prob", the more robust space
    return chosen, losses, nested[chosen]


def _nested_stages(cfg: EnsembleConfig, inputs: Inputs, space: str) -> NestedBlend:
    """Nested predictions of the weighted blend in `space`, fitted on k-1 folds each time."""
    y, oof = inputs.y, inputs.oof
    before: list[np.ndarray] = []
    fits: list[dict[str, Any]] = []

    def fit_predict(train: np.ndarray, held: np.ndarray) -> np.ndarray:
        blend = fit_blend([p[train] for p in oof], y[train], space, cfg.temperature,
                          cfg.n_starts, cfg.seed)
        held_probs = [p[held] for p in oof]
        before.append(softmax(blend.logits(held_probs), axis=1))
        fits.append({
            "fold": int(inputs.folds[held][0]),
            "weights": dict(zip(inputs.names, map(float, blend.weights), strict=True)),
            "temperature": blend.temperature,
        })
        return blend.predict(held_probs)

    after = cross_fit(fit_predict, inputs.folds)
    if after is None:
        return NestedBlend(None, None, [])
    untempered = np.empty_like(after)
    for fold_fit, pred in zip(fits, before, strict=True):
        untempered[inputs.folds == fold_fit["fold"]] = pred
    return NestedBlend(untempered, after, fits)


def _stacking(
    cfg: EnsembleConfig, inputs: Inputs
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """(cross-fitted OOF, in-sample OOF, test) probabilities of the stacking regression.

    The cross-fitted OOF is what an ensemble run writes when stacking wins: an in-sample
    regression with 8 x n_models x 8 weights would flatter itself.
    """
    y, n_classes = inputs.y, len(CLASSES)
    x_oof, x_test = _stack_features(inputs.oof), _stack_features(inputs.test)

    def fit_predict(train: np.ndarray, held: np.ndarray) -> np.ndarray:
        return _stack_predict(_fit_stacker(x_oof[train], y[train], cfg.stacking_c),
                              x_oof[held], n_classes)

    nested = cross_fit(fit_predict, inputs.folds)
    full = _fit_stacker(x_oof, y, cfg.stacking_c)
    in_sample = _stack_predict(full, x_oof, n_classes)
    return nested, in_sample, _stack_predict(full, x_test, n_classes)


def _site_adaptation(
    cfg: EnsembleConfig,
    inputs: Inputs,
    oof: np.ndarray,
    nested: np.ndarray | None,
    test: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, dict[str, Any]]:
    """Adapted (OOF, test, nested) if the nested estimate improves (or site_adapt: on)."""
    info: dict[str, Any] = {"mode": cfg.site_adapt, "applied": False}
    if cfg.site_adapt == "off":
        return oof, test, nested, info
    if inputs.oof_sites is None or inputs.test_sites is None:
        info["skipped"] = inputs.site_note
        return oof, test, nested, info
    y, sites = inputs.y, inputs.oof_sites
    oof_source, test_source = source_priors(oof, y, inputs.folds)
    strength, grid = choose_strength(oof, y, sites, oof_source, cfg.site_strengths)
    if strength is None and cfg.site_adapt == "on":
        finite = {k: v for k, v in grid.items() if k != "none"}
        strength = float(min(finite, key=finite.__getitem__))
    adapted_oof, oof_priors = adapt_site_priors(oof, sites, oof_source, strength)
    info.update({
        "strength": strength,
        "grid_log_loss": grid,
        "source_prior": dict(zip(CLASSES, map(float, test_source), strict=True)),
        "in_sample": {"before": log_loss(y, oof), "after": log_loss(y, adapted_oof)},
    })
    adapted_nested = None
    if nested is not None:
        result = nested_site_adapt(nested, y, sites, inputs.folds,
                                   source_priors(nested, y, inputs.folds)[0],
                                   cfg.site_strengths)
        adapted_nested = result.probs
        info["nested"] = {
            "before": log_loss(y, nested),
            "after": log_loss(y, adapted_nested),
            "strength_per_fold": result.strength_per_fold,
        }
        improves = info["nested"]["after"] < info["nested"]["before"]
    else:
        improves = info["in_sample"]["after"] < info["in_sample"]["before"]
    apply = strength is not None and (cfg.site_adapt == "on" or improves)
    adapted_test, test_priors = adapt_site_priors(test, inputs.test_sites, test_source, strength)
    info["applied"] = bool(apply)
    info["priors"] = {
        "classes": list(CLASSES),
        "oof": site_prior_table(oof, sites, oof_priors, y),
        "test": site_prior_table(test, inputs.test_sites, test_priors),
    }
    if not apply:
        return oof, test, nested, info
    return adapted_oof, adapted_test, adapted_nested, info


def build_ensemble(cfg: EnsembleConfig, inputs: Inputs) -> EnsembleResult:
    """Fit everything on the OOF predictions and produce the final OOF/test predictions + report."""
    y, oof, test = inputs.y, inputs.oof, inputs.test
    rows: list[dict[str, Any]] = []

    def add_row(name: str, in_sample: np.ndarray, nested: np.ndarray | None) -> None:
        rows.append({"name": name, "in_sample": summary(y, in_sample),
                     "nested": summary(y, nested)})

    for name, probs in zip(inputs.names, oof, strict=True):
        add_row(name, probs, probs)  # nothing is fitted: nested equals in-sample
    space, space_losses, nested_blend = _choose_space(cfg, inputs)
    equal = Blend(space, np.full(len(oof), 1.0 / len(oof)))
    add_row(f"equal-weight mean ({space})", equal.predict(oof), equal.predict(oof))
    blend = fit_blend(oof, y, space, cfg.temperature, cfg.n_starts, cfg.seed)
    add_row(f"weighted blend ({space})", softmax(blend.logits(oof), axis=1),
            nested_blend.untempered)
    final_oof, final_test = blend.predict(oof), blend.predict(test)
    final_nested = nested_blend.tempered
    if cfg.temperature:
        add_row(f"+ temperature (T={blend.temperature:.3f})", final_oof, final_nested)

    stacking: dict[str, Any] = {"mode": cfg.stacking, "used": False}
    if cfg.stacking is not False:
        stack_nested, stack_in, stack_test = _stacking(cfg, inputs)
        add_row("stacking (logistic regression)", stack_in, stack_nested)
        stacking["in_sample"] = summary(y, stack_in)
        stacking["nested"] = summary(y, stack_nested)
        wins = (stack_nested is not None and final_nested is not None
                and log_loss(y, stack_nested) < log_loss(y, final_nested))
        if cfg.stacking is True or wins:
            stacking["used"] = True
            final_oof = stack_nested if stack_nested is not None else stack_in
            final_test, final_nested = stack_test, stack_nested

    final_oof, final_test, final_nested, site_info = _site_adaptation(
        cfg, inputs, final_oof, final_nested, final_test
    )
    if site_info["applied"]:
        add_row(f"+ site adaptation (strength {site_info['strength']:g})", final_oof,
                final_nested)
    method = "stacking" if stacking["used"] else "weighted"
    final = {"in_sample": summary(y, final_oof), "nested": summary(y, final_nested)}
    rows.append({"name": f"final ({method})", **final})
    report = {
        "runs": dict(zip(inputs.names, map(str, cfg.runs), strict=True)),
        "n_oof": len(inputs.oof_ids),
        "n_test": len(inputs.test_ids),
        "folds": sorted(int(f) for f in np.unique(inputs.folds)),
        "method": method,
        "space": space,
        "space_choice": {"mode": cfg.space, "log_loss": space_losses,
                         "estimate": "in_sample" if nested_blend.tempered is None else "nested"},
        "weights": dict(zip(inputs.names, map(float, blend.weights), strict=True)),
        "temperature": blend.temperature if cfg.temperature else None,
        "nested_fits": nested_blend.fits,
        "stacking": stacking,
        "site_adapt": site_info,
        "table": rows,
        "final": final,
    }
    return EnsembleResult(oof=final_oof, test=final_test, nested=final_nested, report=report)


def write_ensemble(cfg: EnsembleConfig, inputs: Inputs, result: EnsembleResult) -> Path:
    """The same files as a model run, so the ensemble can be scored, submitted or re-blended."""
    if not cfg.out:
        raise EnsembleError("no output folder: give --out or `out:` in the config")
    out = Path(cfg.out)
    y, folds = inputs.y, inputs.folds
    write_predictions(out / OOF_FILE, make_frame(inputs.oof_ids, result.oof, folds))
    write_predictions(out / TEST_FILE, make_frame(inputs.test_ids, result.test))
    metrics: dict[str, Any] = {
        "overall": score(y, result.oof),
        "nested": None if result.nested is None else score(y, result.nested),
        "per_fold": {
            str(f): summary(y[folds == f], result.oof[folds == f]) for f in np.unique(folds)
        },
    }
    write_json(out / METRICS_FILE, metrics)
    commit = git_commit()
    write_json(out / ENSEMBLE_FILE, {**result.report, "git_commit": commit})
    write_yaml(out / CONFIG_FILE, {**config_dict(cfg), "git_commit": commit})
    return out


def ensemble(cfg: EnsembleConfig) -> EnsembleResult:
    """Read, fit, write: the whole stage as one call (what `make ensemble` runs)."""
    inputs = load_inputs(cfg)
    result = build_ensemble(cfg, inputs)
    write_ensemble(cfg, inputs, result)
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("runs", nargs="*", help="run folders (each with oof.csv and test.csv)")
    parser.add_argument("--data", help="DrivenData folder (default labels and site tables)")
    parser.add_argument("--labels", help="train_labels.csv (default: DATA/train_labels.csv)")
    parser.add_argument("--out", help="ensemble run folder to write, e.g. runs/ens1")
    parser.add_argument("--space", choices=["prob", "logprob", "auto"])
    parser.add_argument("--temperature", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--site-adapt", choices=["off", "auto", "on"])
    parser.add_argument("--features", help="test_features.csv (sites of the test ids)")
    parser.add_argument("--train-features", help="train_features.csv (sites of the OOF ids)")
    parser.add_argument("--seed", type=int)


def run(args: argparse.Namespace) -> int:
    try:
        cfg = resolve_config(
            EnsembleConfig, args.config, args.overrides,
            runs=args.runs or None, data=args.data, labels=args.labels, out=args.out,
            space=args.space, temperature=args.temperature, site_adapt=args.site_adapt,
            features=args.features, train_features=args.train_features, seed=args.seed,
        )
        if not cfg.out:
            raise EnsembleError("no output folder: give --out or `out:` in the config")
        result = ensemble(cfg)
    except (EnsembleError, PredictionError, TableError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    report = result.report
    print(format_table(report["table"]))
    weights = ", ".join(f"{n} {w:.3f}" for n, w in report["weights"].items())
    print(f"weights ({report['space']} space): {weights}")
    if report["temperature"] is not None:
        print(f"temperature: {report['temperature']:.4f}")
    site = report["site_adapt"]
    if site["mode"] != "off":
        print(_site_line(site))
    print(f"wrote {cfg.out}/ ({OOF_FILE}, {TEST_FILE}, {METRICS_FILE}, {ENSEMBLE_FILE}, "
          f"{CONFIG_FILE}); method: {report['method']}")
    return 0


def _site_line(site: dict[str, Any]) -> str:
    if "skipped" in site:
        return f"site adaptation skipped: {site['skipped']}"
    nested = site.get("nested")
    where = (f"nested {nested['before']:.4f} -> {nested['after']:.4f}" if nested
             else "no nested estimate")
    ins = site["in_sample"]
    strength = "none" if site["strength"] is None else f"{site['strength']:g}"
    return (f"site adaptation: strength {strength}, in-sample {ins['before']:.4f} -> "
            f"{ins['after']:.4f}, {where}; {'applied' if site['applied'] else 'not applied'}")
