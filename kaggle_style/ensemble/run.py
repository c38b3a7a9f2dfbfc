"""`ensemble()`: blend runs on their OOF predictions, then gate each per-row step, then write.

Every fitted step is reported twice: in-sample (fitted and scored on all OOF rows, what the
test predictions use) and NESTED (fitted on k-1 folds, scored on the held-out fold, every fold
in turn; see chain.py). Folds are grouped by site, so the nested number is the honest estimate
on unseen sites; the in-sample one is optimistic by however much the step overfits.

The chain: weighted blend (space "prob", "logprob", or "auto": the lower nested log loss after
temperature) -> temperature -> stacking (replaces the two when its nested log loss is lower, or
when forced) -> the per-row steps of steps.STEPS, each run in "auto" only where its nested
estimate improves log loss. Those choices, made on all folds, have seen every fold's labels, so
the final nested figure reruns the whole chain, choices included, without each fold
(`nested_choices`); the per-step figures stay the chain's own, given the choices.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import softmax

from kaggle_style.config import config_dict
from kaggle_style.constants import (
    CONFIG_FILE,
    ENSEMBLE_FILE,
    METRICS_FILE,
    OOF_FILE,
    TEST_FILE,
)
from kaggle_style.ensemble.base import EnsembleError, Inputs
from kaggle_style.ensemble.blend import Blend, fit_blend
from kaggle_style.ensemble.chain import StepPredictions, StepResult, fit_folds, fold_split, run_step
from kaggle_style.ensemble.config import EnsembleConfig
from kaggle_style.ensemble.inputs import load_inputs
from kaggle_style.ensemble.schema import VERSION, EnsembleReport, Summary, write_report
from kaggle_style.ensemble.stacking import stacking
from kaggle_style.ensemble.steps import STEPS, camera_trap_off
from kaggle_style.ensemble.table import loss_only, summary
from kaggle_style.errors import check_name
from kaggle_style.files import atomic_folder, git_commit, write_json, write_yaml
from kaggle_style.metrics import log_loss, metric, score
from kaggle_style.prediction_files import make_frame, write_predictions
from kaggle_style.task import DEFAULT_FOLDS, load_task

Figures = Callable[[np.ndarray, np.ndarray | None], dict[str, float] | None]

__all__ = ["EnsembleConfig", "EnsembleError", "EnsembleResult", "build_ensemble", "ensemble"]


@dataclass
class EnsembleResult:
    oof: np.ndarray  # final OOF probabilities written to oof.csv
    test: np.ndarray
    nested: np.ndarray | None  # final nested OOF probabilities (None with one fold)
    report: EnsembleReport  # what ensemble.json holds
    blend: Blend  # the fitted second stage, as `predict` rebuilds it from the report


@dataclass
class NestedBlend:
    """One blending space: its stream (nested after temperature), untempered nested, fits."""

    stream: StepPredictions
    untempered: np.ndarray | None
    fits: list[dict[str, Any]]


def _blend_stream(cfg: EnsembleConfig, inputs: Inputs, space: str) -> NestedBlend:
    """Each fold's blend fitted on the other folds; the test side is filled in by the caller."""
    y, oof = inputs.y, inputs.oof

    def fit(rows: np.ndarray) -> Blend:
        return fit_blend(
            [p[rows] for p in oof], y[rows], space, cfg.temperature, cfg.n_starts, cfg.seed
        )

    states, blends = fit_folds(fit, lambda b, rows: b.predict([p[rows] for p in oof]), inputs.folds)
    stream = StepPredictions(np.empty(0), np.empty(0), states)
    if not states:
        return NestedBlend(stream, None, [])
    untempered = np.empty((len(y), oof[0].shape[1]))
    fits = []
    for state, blend in zip(states, blends, strict=True):
        untempered[state.held] = softmax(blend.logits([p[state.held] for p in oof]), axis=1)
        fits.append(
            {
                "fold": state.fold,
                "weights": dict(zip(inputs.names, map(float, blend.weights), strict=True)),
                "temperature": blend.temperature,
            }
        )
    return NestedBlend(stream, untempered, fits)


def _choose_space(cfg: EnsembleConfig, inputs: Inputs) -> tuple[str, dict[str, float], NestedBlend]:
    """The blending space, the log loss that chose it for each space tried, its nested fits."""
    spaces = ["prob", "logprob"] if cfg.space == "auto" else [cfg.space]
    y, oof = inputs.y, inputs.oof
    nested = {space: _blend_stream(cfg, inputs, space) for space in spaces}
    losses: dict[str, float] = {}
    for space in spaces:
        held = nested[space].stream.nested()
        if held is not None:
            losses[space] = log_loss(y, held)
        else:  # one fold: no nested estimate, so the in-sample fit has to decide
            blend = fit_blend(oof, y, space, cfg.temperature, cfg.n_starts, cfg.seed)
            losses[space] = log_loss(y, blend.predict(oof))
    chosen = min(spaces, key=losses.__getitem__)  # ties: "prob", the more robust space
    return chosen, losses, nested[chosen]


def _gate(mode: str, stream: StepPredictions, step: StepResult, y: np.ndarray) -> dict[str, Any]:
    """Apply a step in "auto" only if it improves the nested log loss (in-sample with one fold)."""
    info: dict[str, Any] = {
        "in_sample": {"before": log_loss(y, stream.oof), "after": log_loss(y, step.stream.oof)},
    }
    before, after = stream.nested(), step.stream.nested()
    if before is not None and after is not None:
        info["nested"] = {"before": log_loss(y, before), "after": log_loss(y, after)}
    where = info.get("nested", info["in_sample"])
    improves = where["after"] < where["before"]
    return {"applied": bool(step.params.active and (mode == "on" or improves)), **info}


def _check_modes(cfg: EnsembleConfig, inputs: Inputs) -> None:
    for step in STEPS:
        note = step.note(inputs)
        if step.mode(cfg) == "on" and note:
            raise EnsembleError(
                f"{step.config_key} is on but there is {note}; give it, or set "
                f"{step.config_key}: auto"
            )


# ------------------------------------------------------------------------ every choice nested
# The chain makes choices on the nested log loss of its folds: the blending space, stacking or
# the weighted blend, and each step's `auto` gate. Made on all folds, a choice has seen the
# labels of the fold it is then applied to, so the nested figure of the chosen chain is
# optimistic. Here each fold k is predicted by the same code run on the other folds alone, with
# fold k as its test rows: every fit AND every choice is made without fold k's labels. The
# in-sample choice (all folds) still makes the test predictions; this only gives the honest
# figure and each fold's choices.


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


def build_ensemble(cfg: EnsembleConfig, inputs: Inputs) -> EnsembleResult:
    """The chain fitted and chosen on every OOF row (the test predictions), with the honest
    nested figure: each fold predicted by the chain fitted AND chosen on the other folds."""
    result = fit_chain(cfg, inputs)
    if not has_choices(cfg) or result.nested is None:
        return result
    nested, per_fold = nested_choices(cfg, inputs, lambda c, i: fit_chain(c, i, figures=loss_only))
    report, honest = result.report, Summary.model_validate(summary(inputs.y, nested))
    assert report.final is not None and report.table is not None  # a full fit_chain sets both
    final = report.final.model_copy(
        update={
            "nested": honest,
            "nested_given_choices": report.final.nested,
        }
    )
    table = [*report.table[:-1], report.table[-1].model_copy(update={"nested": honest})]
    report = report.model_copy(
        update={"final": final, "table": table, "choices_per_fold": per_fold}
    )
    return replace(result, nested=nested, report=report)


def fit_chain(
    cfg: EnsembleConfig, inputs: Inputs, figures: Figures | None = None
) -> EnsembleResult:
    """Fit and choose everything on the OOF rows; nested figures for the choices made here.

    `figures(y, probs)`: the table's cells (default `summary`; the per-fold reruns of
    `nested_choices` need only the predictions, so they pass the cheaper `loss_only`).
    """
    cells = figures or summary
    y, oof, test = inputs.y, inputs.oof, inputs.test
    _check_modes(cfg, inputs)
    rows: list[dict[str, Any]] = []

    def add_row(name: str, in_sample: np.ndarray, nested: np.ndarray | None) -> None:
        rows.append({"name": name, "in_sample": cells(y, in_sample), "nested": cells(y, nested)})

    for name, probs in zip(inputs.names, oof, strict=True):
        add_row(name, probs, probs)  # nothing is fitted: nested equals in-sample
    space, space_losses, nested_blend = _choose_space(cfg, inputs)
    equal = Blend(space, np.full(len(oof), 1.0 / len(oof)))
    add_row(f"equal-weight mean ({space})", equal.predict(oof), equal.predict(oof))
    blend = fit_blend(oof, y, space, cfg.temperature, cfg.n_starts, cfg.seed)
    add_row(
        f"weighted blend ({space})", softmax(blend.logits(oof), axis=1), nested_blend.untempered
    )
    stream = StepPredictions(blend.predict(oof), blend.predict(test), nested_blend.stream.folds)
    if cfg.temperature:
        add_row(f"+ temperature (T={blend.temperature:.3f})", stream.oof, stream.nested())

    stack_info: dict[str, Any] = {"mode": cfg.stacking, "used": False}
    if cfg.stacking is not False:
        stack = stacking(oof, test, y, inputs.folds, cfg.stacking_c, oof[0].shape[1])
        add_row("stacking (logistic regression)", stack.in_sample, stack.nested)
        stack_info["in_sample"] = cells(y, stack.in_sample)
        stack_info["nested"] = cells(y, stack.nested)
        weighted = stream.nested()
        wins = (
            stack.nested is not None
            and weighted is not None
            and log_loss(y, stack.nested) < log_loss(y, weighted)
        )
        if cfg.stacking is True or wins:
            stack_info.update(used=True, model=stack.model.to_dict())
            blend.stacker, stream = stack.model, stack.stream()

    records: dict[str, dict[str, Any]] = {}
    for step in STEPS:
        mode, note = step.mode(cfg), step.note(inputs)
        if mode == "off":
            records[step.key] = {"mode": mode, "applied": False}
            continue
        if note:
            records[step.key] = {"mode": mode, "applied": False, "skipped": note}
            continue
        fitted = run_step(stream, inputs.rows(), inputs.test_rows(), step.fitter(cfg), step.apply)
        info = _gate(mode, stream, fitted, y)
        details, per_fold = step.record(fitted.params, fitted.fold_params, stream, inputs)
        if "nested" in info and per_fold is not None:
            info["nested"].update(per_fold)
        records[step.key] = {"mode": mode, **info, **details}
        if info["applied"]:
            add_row(step.row_name(fitted.params), fitted.stream.oof, fitted.stream.nested())
            stream = fitted.stream
            blend.steps.append((step, fitted.params))

    method = "stacking" if stack_info["used"] else "weighted"
    final = {"in_sample": cells(y, stream.oof), "nested": cells(y, stream.nested())}
    rows.append({"name": f"final ({method})", **final})
    report = EnsembleReport(
        version=VERSION,
        runs=dict(zip(inputs.names, map(str, cfg.runs), strict=True)),
        members={
            name: {"path": str(path), "model_hash": key}
            for name, path, key in zip(
                inputs.names, cfg.runs, inputs.hashes or [None] * len(cfg.runs), strict=True
            )
        },
        n_oof=len(inputs.oof_ids),
        n_test=len(inputs.test_ids),
        folds=sorted(int(f) for f in np.unique(inputs.folds)),
        method=method,
        space=space,
        space_choice={
            "mode": cfg.space,
            "log_loss": space_losses,
            "estimate": "in_sample" if nested_blend.untempered is None else "nested",
        },
        weights=dict(zip(inputs.names, map(float, blend.weights), strict=True)),
        temperature=blend.temperature if cfg.temperature else None,
        nested_fits=nested_blend.fits,
        stacking=stack_info,
        steps=records,
        table=rows,
        final=final,
        **_task_fields(inputs, stream),
    )
    return EnsembleResult(stream.oof, stream.test, stream.nested(), report, blend)


def _task_fields(inputs: Inputs, stream: StepPredictions) -> dict[str, Any]:
    """The task's name, class order and metric (in-sample and nested) for ensemble.json."""
    task = inputs.task
    if task is None:
        return {}
    scorer = metric(task.score_metric)
    nested = stream.nested()
    return {
        **task.record(),
        "metric": {
            "name": task.score_metric,
            "in_sample": scorer(inputs.y, stream.oof),
            "nested": None if nested is None else scorer(inputs.y, nested),
        },
    }


def write_ensemble(cfg: EnsembleConfig, inputs: Inputs, result: EnsembleResult) -> Path:
    """The same files as a model run, so the ensemble can be scored, submitted or re-blended;
    written aside and swapped in whole, so a kill or a full disk between the files never leaves
    new predictions beside an old ensemble.json."""
    target = Path(_out_folder(cfg))
    check_out_folder(target)
    with atomic_folder(target) as out:
        _write_files(out, cfg, inputs, result)
    return target


def _write_files(out: Path, cfg: EnsembleConfig, inputs: Inputs, result: EnsembleResult) -> None:
    y, folds, classes = inputs.y, inputs.folds, inputs.classes
    metric = inputs.task.score_metric if inputs.task is not None else None
    oof_frame = make_frame(inputs.oof_ids, result.oof, folds, classes=classes)
    write_predictions(out / OOF_FILE, oof_frame)
    write_predictions(out / TEST_FILE, make_frame(inputs.test_ids, result.test, classes=classes))
    metrics: dict[str, Any] = {
        "overall": score(y, result.oof, classes, metric),
        "nested": None if result.nested is None else score(y, result.nested, classes, metric),
        "per_fold": {
            str(f): summary(y[folds == f], result.oof[folds == f]) for f in np.unique(folds)
        },
    }
    write_json(out / METRICS_FILE, metrics)
    commit = git_commit()
    write_report(out / ENSEMBLE_FILE, result.report.model_copy(update={"git_commit": commit}))
    record = inputs.task.record() if inputs.task is not None else {}
    write_yaml(out / CONFIG_FILE, {**config_dict(cfg), **record, "git_commit": commit})


def check_out_folder(out: Path) -> None:
    """Before any work: `out` is new, empty or an ensemble's folder (it is replaced whole), and
    its last step a name (`runs/..` or `.` would replace the folder above)."""
    check_name(out.name or str(out), "the ensemble's --out folder")
    if out.exists() and not out.is_dir():
        raise EnsembleError(f"{out}: is a file; give a folder as the ensemble's --out")
    if out.is_dir() and any(out.iterdir()) and not (out / ENSEMBLE_FILE).is_file():
        raise EnsembleError(
            f"{out}: holds files but no {ENSEMBLE_FILE}, so it is not an "
            "ensemble's folder and would be replaced; give a new folder as --out"
        )


def _out_folder(cfg: EnsembleConfig) -> str:
    if not cfg.out:
        raise EnsembleError("no output folder: give --out or `out:` in the config")
    return cfg.out


def ensemble(cfg: EnsembleConfig) -> EnsembleResult:
    """Read, fit, write: the whole stage as one call (what `make ensemble` runs)."""
    check_out_folder(Path(_out_folder(cfg)))
    task = load_task(cfg.task, folds=DEFAULT_FOLDS)
    cfg, skipped = camera_trap_off(cfg, task)
    if skipped:
        print(skipped, flush=True)
    used = [step for step in STEPS if step.mode(cfg) != "off"]
    inputs = load_inputs(
        cfg,
        need_sites=any("sites" in s.inputs for s in used),
        need_meta=any("meta" in s.inputs for s in used),
        need_detections=any("detections" in s.inputs for s in used),
        task=task,
    )
    result = build_ensemble(cfg, inputs)
    write_ensemble(cfg, inputs, result)
    return result
