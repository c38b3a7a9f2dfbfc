"""The printed comparison: every step's in-sample and nested figures, then one line per step."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from kaggle_style.constants import CONFIG_FILE, ENSEMBLE_FILE, METRICS_FILE, OOF_FILE, TEST_FILE
from kaggle_style.ensemble.steps import STEPS, Step
from kaggle_style.metrics import log_loss, score

if TYPE_CHECKING:
    from kaggle_style.ensemble.schema import EnsembleReport, StepRecord

SUMMARY_KEYS = ("log_loss", "accuracy", "f1_micro", "f1_macro", "f1_weighted")


def summary(y: np.ndarray, probs: np.ndarray | None) -> dict[str, float] | None:
    """The few numbers of one table cell (the full score goes to metrics.json)."""
    if probs is None:
        return None
    full = score(y, probs, tuple(map(str, range(np.shape(probs)[1]))))
    return {k: float(full[k]) for k in SUMMARY_KEYS}


def loss_only(y: np.ndarray, probs: np.ndarray | None) -> dict[str, float] | None:
    """A cell with the log loss alone (where the other figures would never be read)."""
    if probs is None:
        return None
    return {k: float(log_loss(y, probs)) if k == "log_loss" else float("nan") for k in SUMMARY_KEYS}


def format_table(rows: list[dict[str, Any]]) -> str:
    """In-sample and nested log loss side by side, one row per model and applied step."""
    width = max(28, *(len(r["name"]) + 2 for r in rows))
    head = (
        f"{'':<{width}}{'log loss':>10}{'nested':>10}{'accuracy':>10}"
        f"{'F1 micro':>10}{'F1 macro':>10}{'F1 wtd':>10}"
    )
    lines = [head, "-" * len(head)]
    for row in rows:
        ins, nested = row["in_sample"], row["nested"]
        nested_text = f"{nested['log_loss']:>10.4f}" if nested else f"{'-':>10}"
        lines.append(
            f"{row['name']:<{width}}{ins['log_loss']:>10.4f}{nested_text}{ins['accuracy']:>10.3f}"
            f"{ins['f1_micro']:>10.3f}{ins['f1_macro']:>10.3f}{ins['f1_weighted']:>10.3f}"
        )
    return "\n".join(lines)


def step_line(step: Step, info: StepRecord) -> str:
    """One step tried: what it chose, before -> after in-sample and nested, applied or not."""
    if info.skipped is not None:
        return f"{step.title} skipped: {info.skipped}"
    nested = info.nested
    where = (
        f"nested {nested['before']:.4f} -> {nested['after']:.4f}"
        if nested
        else "no nested estimate"
    )
    ins = info.in_sample or {}
    return (
        f"{step.title}: {step.chosen(info.details())}, in-sample {ins['before']:.4f} -> "
        f"{ins['after']:.4f}, {where}; {'applied' if info.applied else 'not applied'}"
    )


def render(report: EnsembleReport, out: str) -> str:
    """Everything `kaggle-style ensemble` prints after a run."""
    lines = [format_table([row.model_dump() for row in report.table or []])]
    weights = ", ".join(f"{n} {w:.3f}" for n, w in report.weights.items())
    lines.append(f"weights ({report.space} space): {weights}")
    if report.temperature is not None:
        lines.append(f"temperature: {report.temperature:.4f}")
    for step in STEPS:
        info = report.step(step.key)
        if info is not None and info.mode != "off":
            lines.append(step_line(step, info))
    task_metric = report.metric or {}
    if task_metric.get("name") not in (None, "log_loss"):
        nested = task_metric.get("nested")
        lines.append(
            f"task {report.task}, {task_metric['name']} (fitted and chosen by log loss): "
            f"in-sample {task_metric['in_sample']:.4f}, nested "
            + ("-" if nested is None else f"{nested:.4f}")
        )
    lines.append(
        f"wrote {out}/ ({OOF_FILE}, {TEST_FILE}, {METRICS_FILE}, {ENSEMBLE_FILE}, "
        f"{CONFIG_FILE}); method: {report.method}"
    )
    return "\n".join(lines)
