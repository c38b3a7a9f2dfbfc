"""The printed comparison: every step's in-sample and nested figures, then one line per step."""

from __future__ import annotations

from typing import Any

import numpy as np

from kaggle_style.constants import CONFIG_FILE, ENSEMBLE_FILE, METRICS_FILE, OOF_FILE, TEST_FILE
from kaggle_style.metrics import score

SUMMARY_KEYS = ("log_loss", "accuracy", "f1_micro", "f1_macro", "f1_weighted")
STEP_TITLES = {"sequences": "sequence pooling", "time": "time of day",
               "site_adapt": "site adaptation"}


def summary(y: np.ndarray, probs: np.ndarray | None) -> dict[str, float] | None:
    """The few numbers of one table cell (the full score goes to metrics.json)."""
    if probs is None:
        return None
    full = score(y, probs)
    return {k: float(full[k]) for k in SUMMARY_KEYS}


def format_table(rows: list[dict[str, Any]]) -> str:
    """In-sample and nested log loss side by side, one row per model and applied step."""
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


def _choice(key: str, info: dict[str, Any]) -> str:
    if key == "sequences":
        gap = info.get("gap")
        return "no pooling" if gap is None else f"gap {gap:g} s, weight {info['weight']:g}"
    if key == "time":
        return f"{info['harmonics']} daily cycle(s) + night flag"
    strength = info.get("strength")
    return "strength none" if strength is None else f"strength {strength:g}"


def step_line(key: str, info: dict[str, Any]) -> str:
    """One step tried: what it chose, before -> after in-sample and nested, applied or not."""
    title = STEP_TITLES[key]
    if "skipped" in info:
        return f"{title} skipped: {info['skipped']}"
    nested = info.get("nested")
    where = (f"nested {nested['before']:.4f} -> {nested['after']:.4f}" if nested
             else "no nested estimate")
    ins = info["in_sample"]
    return (f"{title}: {_choice(key, info)}, in-sample {ins['before']:.4f} -> "
            f"{ins['after']:.4f}, {where}; {'applied' if info['applied'] else 'not applied'}")


def render(report: dict[str, Any], out: str) -> str:
    """Everything `kaggle-style ensemble` prints after a run."""
    lines = [format_table(report["table"])]
    weights = ", ".join(f"{n} {w:.3f}" for n, w in report["weights"].items())
    lines.append(f"weights ({report['space']} space): {weights}")
    if report["temperature"] is not None:
        lines.append(f"temperature: {report['temperature']:.4f}")
    lines += [step_line(key, report[key]) for key in STEP_TITLES if report[key]["mode"] != "off"]
    lines.append(f"wrote {out}/ ({OOF_FILE}, {TEST_FILE}, {METRICS_FILE}, {ENSEMBLE_FILE}, "
                 f"{CONFIG_FILE}); method: {report['method']}")
    return "\n".join(lines)
