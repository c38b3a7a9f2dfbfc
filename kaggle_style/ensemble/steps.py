"""The per-row second-stage steps, each one object, in the one order everything iterates.

A step is fitted on OOF rows after the blend (or stacking), gated by its nested estimate, and
applied by `Blend` to test rows and to new images. Each class says everything the rest of the
package needs to know about it: its ensemble.json key, its mode's config key, its title, what
new rows must carry for it, how it is fitted and applied, the table row it adds, what it records
and how that record is read back. `build_ensemble`, `Blend`, the printed table, the HTML report,
`make demo`'s summary and `predict` iterate `STEPS`; adding a step is one class and one entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from kaggle_style.ensemble.base import EnsembleError, Inputs, RowFacts
from kaggle_style.ensemble.chain import StepPredictions
from kaggle_style.ensemble.config import EnsembleConfig
from kaggle_style.ensemble.detections import (
    DetectionGate,
    apply_detection_gate,
    fit_detection_gate,
)
from kaggle_style.ensemble.sequences import Pooling, TimeAdjust, apply_pooling, apply_time
from kaggle_style.ensemble.sequences import fit_pooling as _fit_pooling
from kaggle_style.ensemble.sequences import fit_time as _fit_time
from kaggle_style.ensemble.sites import (
    SiteFit,
    adapt_site_priors,
    apply_sites,
    fit_sites,
    site_prior_table,
)

if TYPE_CHECKING:
    from kaggle_style.ensemble.schema import EnsembleReport
    from kaggle_style.task import Task

Fit = Callable[[np.ndarray, RowFacts], tuple[Any, np.ndarray]]


class Step:
    """One per-row step; subclasses fill in the class variables and the methods."""

    key: ClassVar[str]  # its record's key in ensemble.json
    config_key: ClassVar[str]  # the EnsembleConfig field holding its off/auto/on mode
    title: ClassVar[str]  # how the table, the report and predict's warnings name it
    inputs: ClassVar[tuple[str, ...]]  # what `ensemble` must read for it: "sites", "meta"
    needs: ClassVar[tuple[str, ...]]  # RowFacts fields new rows must carry, else it is skipped
    needs_text: ClassVar[str]  # those fields as predict's warning names them

    def mode(self, cfg: EnsembleConfig) -> str:
        return str(getattr(cfg, self.config_key))

    def note(self, inputs: Inputs) -> str:
        """Why this step cannot run on these inputs ("" when it can)."""
        if "meta" in self.inputs:
            meta_note = inputs.meta_note or ("" if inputs.oof_meta is not None else "no meta.csv")
            if meta_note:
                return meta_note
        return inputs.site_note if "sites" in self.inputs else ""

    def fitter(self, cfg: EnsembleConfig) -> Fit:
        raise NotImplementedError

    def apply(self, params: Any, probs: np.ndarray, rows: RowFacts) -> np.ndarray:
        raise NotImplementedError

    def row_name(self, params: Any) -> str:
        """Its row in the comparison table when applied."""
        raise NotImplementedError

    def record(
        self, params: Any, fold_params: dict[str, Any], before: StepPredictions, inputs: Inputs
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """(what ensemble.json keeps of the fit, each fold's fit for the nested figures)."""
        raise NotImplementedError

    def chosen(self, record: dict[str, Any]) -> str:
        """What the fit chose, in a few words (table, report and summary)."""
        raise NotImplementedError

    def load(self, record: dict[str, Any]) -> Any:
        """The fitted params back from an applied step's record."""
        raise NotImplementedError

    def missing(self, rows: RowFacts) -> bool:
        return any(getattr(rows, f) is None for f in self.needs)


class DetectionStacking(Step):
    key, config_key, title = "detections", "detection_stacking", "detection-aware stacking"
    inputs = ("detections",)
    needs, needs_text = ("boxes",), "detections (a crop-trained member's detector run)"

    def note(self, inputs: Inputs) -> str:
        return inputs.detections_note if inputs.oof_boxes is None else ""

    def fitter(self, cfg: EnsembleConfig) -> Fit:
        def fit(probs: np.ndarray, rows: RowFacts) -> tuple[DetectionGate, np.ndarray]:
            return fit_detection_gate(probs, rows, cfg.detection_thresholds, cfg.detection_c)

        return fit

    def apply(self, params: DetectionGate, probs: np.ndarray, rows: RowFacts) -> np.ndarray:
        return apply_detection_gate(params, probs, rows)

    def row_name(self, params: DetectionGate) -> str:
        return "+ detection-aware stacking (per-image member weights)"

    def record(
        self,
        params: DetectionGate,
        fold_params: dict[str, DetectionGate],
        before: StepPredictions,
        inputs: Inputs,
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        return params.to_dict(), None

    def chosen(self, record: dict[str, Any]) -> str:
        coef = np.asarray(record.get("coef", []))
        return (
            f"{coef.shape[0] if coef.ndim == 2 else 0} member gates on "
            f"{coef.shape[1] - 1 if coef.ndim == 2 else 0} detector features"
        )

    def load(self, record: dict[str, Any]) -> DetectionGate:
        return DetectionGate.from_dict(record)


class SequencePooling(Step):
    key, config_key, title = "sequences", "sequences", "sequence pooling"
    inputs = ("sites", "meta")
    needs, needs_text = ("sites", "times"), "sites (--site-from-folder) and readable times"

    def note(self, inputs: Inputs) -> str:
        meta_note = inputs.meta_note or ("" if inputs.oof_meta is not None else "no meta.csv")
        meta = inputs.oof_meta  # (None only where meta_note says why)
        if not meta_note and meta is not None and not np.isfinite(meta.times).any():
            return "no readable datetime for any OOF id in meta.csv"
        return inputs.site_note or meta_note

    def fitter(self, cfg: EnsembleConfig) -> Fit:
        def fit(probs: np.ndarray, rows: RowFacts) -> tuple[Pooling, np.ndarray]:
            return _fit_pooling(
                probs,
                rows,
                gaps=cfg.sequence_gaps,
                weights=cfg.sequence_weights,
                force=cfg.sequences == "on",
            )

        return fit

    def apply(self, params: Pooling, probs: np.ndarray, rows: RowFacts) -> np.ndarray:
        return apply_pooling(params, probs, rows)

    def row_name(self, params: Pooling) -> str:
        return f"+ sequence pooling (gap {params.gap:g} s, weight {params.weight:g})"

    def record(
        self,
        params: Pooling,
        fold_params: dict[str, Pooling],
        before: StepPredictions,
        inputs: Inputs,
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        return (
            {"gap": params.gap, "weight": params.weight, "grid_log_loss": params.grid},
            {"per_fold": {k: {"gap": v.gap, "weight": v.weight} for k, v in fold_params.items()}},
        )

    def chosen(self, record: dict[str, Any]) -> str:
        gap = record.get("gap")
        return "no pooling" if gap is None else f"gap {gap:g} s, weight {record['weight']:g}"

    def load(self, record: dict[str, Any]) -> Pooling:
        return Pooling(float(record["gap"]), float(record["weight"]))


class TimeOfDay(Step):
    key, config_key, title = "time", "time_adjust", "time of day"
    inputs = ("meta",)
    needs, needs_text = ("hours", "night"), "readable times"

    def fitter(self, cfg: EnsembleConfig) -> Fit:
        def fit(probs: np.ndarray, rows: RowFacts) -> tuple[TimeAdjust, np.ndarray]:
            return _fit_time(probs, rows, c=cfg.time_c, harmonics=cfg.time_harmonics)

        return fit

    def apply(self, params: TimeAdjust, probs: np.ndarray, rows: RowFacts) -> np.ndarray:
        return apply_time(params, probs, rows)

    def row_name(self, params: TimeAdjust) -> str:
        return "+ time of day (hour, night)"

    def record(
        self,
        params: TimeAdjust,
        fold_params: dict[str, TimeAdjust],
        before: StepPredictions,
        inputs: Inputs,
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        return {**params.to_dict(), "classes": list(inputs.classes)}, None

    def chosen(self, record: dict[str, Any]) -> str:
        return f"{record.get('harmonics', '?')} daily cycle(s) + night flag"

    def load(self, record: dict[str, Any]) -> TimeAdjust:
        return TimeAdjust(np.asarray(record["coef"], dtype=float), int(record["harmonics"]))


class SiteAdaptation(Step):
    key, config_key, title = "site_adapt", "site_adapt", "site adaptation"
    inputs = ("sites",)
    needs, needs_text = ("sites",), "sites (--site-from-folder)"

    def fitter(self, cfg: EnsembleConfig) -> Fit:
        def fit(probs: np.ndarray, rows: RowFacts) -> tuple[SiteFit, np.ndarray]:
            return fit_sites(
                probs, rows, strengths=cfg.site_strengths, force=cfg.site_adapt == "on"
            )

        return fit

    def apply(self, params: SiteFit, probs: np.ndarray, rows: RowFacts) -> np.ndarray:
        return apply_sites(params, probs, rows)

    def row_name(self, params: SiteFit) -> str:
        return f"+ site adaptation (strength {params.strength:g})"

    def record(
        self,
        params: SiteFit,
        fold_params: dict[str, SiteFit],
        before: StepPredictions,
        inputs: Inputs,
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        assert inputs.oof_sites is not None and inputs.test_sites is not None  # what it needs
        test_priors = adapt_site_priors(
            before.test, inputs.test_sites, params.source_prior, params.strength
        )[1]
        return (
            {
                "strength": params.strength,
                "grid_log_loss": params.grid,
                "source_prior": dict(
                    zip(inputs.classes, map(float, params.source_prior), strict=True)
                ),
                "priors": {
                    "classes": list(inputs.classes),
                    "oof": site_prior_table(
                        before.oof, inputs.oof_sites, params.priors, inputs.classes, inputs.y
                    ),
                    "test": site_prior_table(
                        before.test, inputs.test_sites, test_priors, inputs.classes
                    ),
                },
            },
            {"strength_per_fold": {k: v.strength for k, v in fold_params.items()}},
        )

    def chosen(self, record: dict[str, Any]) -> str:
        strength = record.get("strength")
        return "strength none" if strength is None else f"strength {strength:g}"

    def load(self, record: dict[str, Any]) -> SiteFit:
        # the recorded order: source_prior was written in the task's class order
        prior = np.asarray(list(record["source_prior"].values()), dtype=float)
        return SiteFit(float(record["strength"]), prior)


# The order the ensemble fits them and `Blend.apply` applies them.
STEPS: tuple[Step, ...] = (DetectionStacking(), SequencePooling(), TimeOfDay(), SiteAdaptation())


def step_named(key: str) -> Step:
    for step in STEPS:
        if step.key == key:
            return step
    raise EnsembleError(f"ensemble.json: unknown step {key!r}; rerun `kaggle-style ensemble`")


def applied_needs(report: EnsembleReport) -> set[str]:
    """What new rows must carry for every step the report applied (`RowFacts` fields, e.g.
    "boxes")."""
    return {
        need
        for step in STEPS
        if (record := report.step(step.key)) is not None and record.applied
        for need in step.needs
    }


def camera_trap_off(cfg: EnsembleConfig, task: Task) -> tuple[EnsembleConfig, str]:
    """The config with the camera-trap steps off when the task has no camera-trap part, and the
    one line that says so ("" when nothing was turned off)."""
    if task.camera_trap_parts:
        return cfg, ""
    steps = [s for s in STEPS if set(s.inputs) & {"meta", "detections"} and s.mode(cfg) != "off"]
    if not steps:
        return cfg, ""
    off: dict[str, Any] = {s.config_key: "off" for s in steps}
    cfg = replace(cfg, **off)
    names = ", ".join(s.title for s in steps)
    return cfg, f"ensemble: task {task.name} has no camera_trap part: {names} skipped"
