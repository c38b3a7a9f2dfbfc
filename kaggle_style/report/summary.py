"""The closing lines of `make demo`: how good the predictions are, what each second-stage step
did to the honest (nested) log loss, and where the submission is."""

from __future__ import annotations

import json
from pathlib import Path

from kaggle_style.constants import ENSEMBLE_FILE, METRICS_FILE
from kaggle_style.ensemble.inputs import read_ensemble
from kaggle_style.ensemble.schema import StepRecord
from kaggle_style.ensemble.steps import STEPS, Step
from kaggle_style.metrics import format_summary
from kaggle_style.report.runs import ReportError, fmt


def step_line(step: Step, record: StepRecord) -> str:
    """'sequence pooling: nested 1.1234 -> 1.1000, applied (gap 60 s, weight 0.5)'."""
    if record.skipped is not None:
        return f"{step.title}: skipped ({record.skipped})"
    if record.mode == "off":
        return f"{step.title}: off"
    where = "nested" if record.nested else "in-sample"
    figures = record.nested or record.in_sample or {}
    verdict = "applied" if record.applied else "not applied (no gain)"
    return (
        f"{step.title}: {where} log loss {fmt(figures.get('before'))} -> "
        f"{fmt(figures.get('after'))}, {verdict} ({step.chosen(record.details())})"
    )


def summarise(run_dir: Path, submission: Path) -> str:
    metrics_path = run_dir / METRICS_FILE
    if not metrics_path.is_file():
        raise ReportError(f"{metrics_path} not found; give the ensemble's run folder")
    lines = [format_summary(f"{run_dir.name} OOF", json.loads(metrics_path.read_text())["overall"])]
    ensemble_path = run_dir / ENSEMBLE_FILE
    if ensemble_path.exists():
        report = read_ensemble(run_dir)[0]
        final = report.final
        in_sample = final.in_sample.log_loss if final else None
        nested = final.nested.log_loss if final and final.nested else None
        lines.append(
            f"ensemble OOF log loss: in-sample {fmt(in_sample)}, nested {fmt(nested)} (every fit "
            "and every choice on the other folds: the honest estimate)"
        )
        steps = [(step, record) for step in STEPS if (record := report.step(step.key)) is not None]
        if steps:
            lines.append("second stage, each step's effect on the nested log loss:")
            lines += [f"  {step_line(step, record)}" for step, record in steps]
    lines.append(f"submission: {submission} (validated)")
    return "\n".join(lines)
