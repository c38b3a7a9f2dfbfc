"""The closing lines of `make demo`: how good the predictions are, what each second-stage step
did to the honest (nested) log loss, and where the submission is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kaggle_style.constants import ENSEMBLE_FILE, METRICS_FILE
from kaggle_style.metrics import format_summary
from kaggle_style.report.runs import ReportError, fmt
from kaggle_style.report.sections import STEPS


def step_line(label: str, step: dict[str, Any]) -> str:
    """'sequence pooling: nested 1.1234 -> 1.1000, applied (gap 60 s, weight 0.5)'."""
    if "skipped" in step:
        return f"{label}: skipped ({step['skipped']})"
    if step.get("mode") == "off":
        return f"{label}: off"
    where = "nested" if step.get("nested") else "in-sample"
    figures = step.get("nested") or step.get("in_sample") or {}
    verdict = "applied" if step.get("applied") else "not applied (no gain)"
    chosen = ""
    if "gap" in step:
        chosen = f" (gap {step['gap']} s, weight {step.get('weight')})"
    elif "strength" in step:
        chosen = f" (strength {step['strength']})"
    return (f"{label}: {where} log loss {fmt(figures.get('before'))} -> "
            f"{fmt(figures.get('after'))}, {verdict}{chosen}")


def summarise(run_dir: Path, submission: Path) -> str:
    metrics_path = run_dir / METRICS_FILE
    if not metrics_path.is_file():
        raise ReportError(f"{metrics_path} not found; give the ensemble's run folder")
    lines = [format_summary(f"{run_dir.name} OOF", json.loads(metrics_path.read_text())["overall"])]
    ensemble_path = run_dir / ENSEMBLE_FILE
    if ensemble_path.exists():
        report = json.loads(ensemble_path.read_text())
        final = report.get("final") or {}
        in_sample = (final.get("in_sample") or {}).get("log_loss")
        nested = (final.get("nested") or {}).get("log_loss")
        lines.append(
            f"ensemble OOF log loss: in-sample {fmt(in_sample)}, nested {fmt(nested)} (every fit "
            "on the other folds: the honest estimate)"
        )
        steps = [(label, report[key]) for key, label in STEPS if isinstance(report.get(key), dict)]
        if steps:
            lines.append("second stage, each step's effect on the nested log loss:")
            lines += [f"  {step_line(label, step)}" for label, step in steps]
    lines.append(f"submission: {submission} (validated)")
    return "\n".join(lines)
