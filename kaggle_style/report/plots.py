"""The report's figures: per-class accuracy, confusion, reliability, per-site priors.

Every figure has a bounded size whatever the data's size: a heat map shows at most
MAX_HEATMAP_SITES sites (the worst first), since one row per site made a 31,000-pixel PNG
for 1,480 sites.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from kaggle_style.files import atomic_path
from kaggle_style.metrics import expected_calibration_error, reliability_bins
from kaggle_style.prediction_files import probs_of
from kaggle_style.report.runs import Run, fmt

N_BINS = 15  # the default of expected_calibration_error, so the plot matches the number
DPI = 90
MAX_HEATMAP_SITES = 40


def save(fig: Any, out: Path, name: str) -> str:
    """Save and close a figure; return its name relative to the page."""
    import matplotlib.pyplot as plt

    try:
        with atomic_path(out / name) as tmp:
            fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    finally:
        plt.close(fig)
    return name


def per_class_plot(runs: list[Run], out: Path) -> str:
    import matplotlib.pyplot as plt

    classes = runs[0].classes
    fig, ax = plt.subplots(figsize=(max(8, 1.2 * len(classes)), 4))
    width = 0.8 / len(runs)
    x = np.arange(len(classes))
    for i, run in enumerate(runs):
        acc = [run.overall["per_class_accuracy"].get(c) for c in classes]
        vals = [np.nan if a is None else a for a in acc]
        ax.bar(x + (i - (len(runs) - 1) / 2) * width, vals, width, label=run.name)
    ax.set_xticks(x, classes, rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy (recall)")
    ax.legend(fontsize=8)
    return save(fig, out, "per_class_accuracy.png")


def confusion_plot(run: Run, index: int, out: Path) -> str:
    import matplotlib.pyplot as plt

    matrix = np.asarray(run.overall["confusion_matrix"], dtype=np.float64)
    support = matrix.sum(axis=1, keepdims=True)
    norm = np.divide(matrix, support, out=np.zeros_like(matrix), where=support > 0)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    im = ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
    for (r, c), v in np.ndenumerate(norm):
        ax.text(
            c,
            r,
            f"{v:.2f}",
            ha="center",
            va="center",
            fontsize=7,
            color="white" if v > 0.5 else "black",
        )
    classes = run.classes
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{run.name}: confusion (rows normalised)")
    fig.colorbar(im, ax=ax, fraction=0.046)
    return save(fig, out, f"confusion_{index}.png")


def untempered(probs: np.ndarray, temperature: float) -> np.ndarray:
    """p ** T renormalised: undoes a temperature T applied as softmax(z / T).

    An ensemble stores the fitted T and its OOF probabilities AFTER scaling, p = softmax(z / T);
    raising p to the power T and renormalising gives softmax(z), the blend BEFORE scaling. (Exact
    for a weighted blend; after stacking or later steps, only the same transform.)
    """
    logp = temperature * np.log(np.clip(probs, 1e-300, None))
    logp -= logp.max(axis=1, keepdims=True)
    p = np.exp(logp)
    return p / p.sum(axis=1, keepdims=True)


def reliability_plot(
    run: Run, index: int, y: np.ndarray, out: Path
) -> tuple[str, list[tuple[str, float]]]:
    """The figure and its (curve, ECE) pairs: before/after T for an ensemble, else as is."""
    import matplotlib.pyplot as plt

    probs = probs_of(run.oof)
    temperature = (run.ensemble or {}).get("temperature")
    if temperature is not None:
        curves = [
            (f"before temperature (p^{fmt(temperature, 3)})", untempered(probs, temperature)),
            (f"after temperature (T={fmt(temperature, 3)})", probs),
        ]
    else:
        curves = [("as is", probs)]
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect")
    eces = []
    for label, p in curves:
        ece = expected_calibration_error(y, p, N_BINS)
        eces.append((label, ece))
        _, confidence, accuracy = reliability_bins(y, p, N_BINS)
        ax.plot(confidence, accuracy, "o-", label=f"{label}: ECE {fmt(ece)}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (top class)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{run.name}: reliability")
    ax.legend(fontsize=8)
    return save(fig, out, f"reliability_{index}.png"), eces


def worst_sites(priors: dict[str, Any], limit: int = MAX_HEATMAP_SITES) -> list[str]:
    """At most `limit` sites: with truth, those whose adapted prior is farthest from it; else
    the largest. Ties keep the table's order."""

    def badness(site: str) -> float:
        entry = priors[site]
        if "true" in entry:
            return float(sum(abs(entry["after"][c] - entry["true"][c]) for c in entry["true"]))
        return float(entry.get("n", 0))

    return sorted(priors, key=lambda s: -badness(s))[:limit]


def priors_plot(
    priors: dict[str, Any],
    kinds: tuple[str, ...],
    name: str,
    out: Path,
    limit: int = MAX_HEATMAP_SITES,
) -> tuple[str, int]:
    """Sites x classes heat maps, one panel per kind (mean prediction, EM prior, truth), of at
    most `limit` sites; the figure and the number of sites shown."""
    import matplotlib.pyplot as plt

    sites = worst_sites(priors, limit)
    fig, axes = plt.subplots(
        1, len(kinds), figsize=(4.2 * len(kinds), 1 + 0.3 * len(sites)), squeeze=False
    )
    for ax, kind in zip(axes[0], kinds, strict=True):
        classes = list(priors[sites[0]][kind]) if sites else []
        grid = np.array([[priors[s][kind][c] for c in classes] for s in sites])
        ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        ax.set_title(kind)
        ax.set_xticks(range(len(classes)), classes, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(len(sites)), sites, fontsize=7)
    return save(fig, out, name), len(sites)
