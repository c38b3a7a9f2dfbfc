"""`kaggle-style report`: one self-contained HTML page comparing runs and an ensemble.

Everything the page shows comes from files the other stages wrote (metrics.json, ensemble.json,
oof.csv, config.yaml) plus the data folder's sites and images, so the report can be rebuilt at
any time without retraining. Numbers from JSON files are printed with DECIMALS decimals, so the
page can be checked against the files by re-formatting them.

Calibration: an ensemble stores the fitted temperature T and its OOF probabilities AFTER
scaling, p = softmax(z / T). Raising p to the power T and renormalising gives softmax(z), the
blend BEFORE scaling; the report plots both. (Exact for a weighted blend; when stacking or site
adaptation produced the final OOF, "before" is only the same transform, an approximation.)
"""

from __future__ import annotations

import argparse
import html
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from kaggle_style.constants import (
    CLASSES,
    CONFIG_FILE,
    ENSEMBLE_FILE,
    FILEPATH_COL,
    ID_COL,
    LABEL_COL,
    METRICS_FILE,
    OOF_FILE,
    SITE_COL,
)
from kaggle_style.data.tables import TableError, load_competition_data
from kaggle_style.io import atomic_path, write_text
from kaggle_style.metrics import expected_calibration_error, log_loss
from kaggle_style.prediction_files import PredictionError, probs_of, read_predictions

DECIMALS = 4
N_BINS = 15  # the default of expected_calibration_error, so the plot matches the number
THUMB_SIZE = (256, 256)
TABLE_KEYS = (("log_loss", "log loss"), ("accuracy", "accuracy"), ("f1_micro", "F1 micro"),
              ("f1_macro", "F1 macro"), ("f1_weighted", "F1 weighted"))
INDEX = "index.html"


class ReportError(ValueError):
    """Inputs a report cannot be made from."""


def fmt(value: Any, decimals: int = DECIMALS) -> str:
    """The one number format of the page (and of the tests that check it)."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    return f"{float(value):.{decimals}f}"


@dataclass
class Run:
    """One run folder as the report reads it."""

    name: str
    path: Path
    overall: dict[str, Any]
    oof: pd.DataFrame
    ensemble: dict[str, Any] | None = None
    config: dict[str, Any] = field(default_factory=dict)


def load_run(path: Path) -> Run:
    """metrics.json + oof.csv (+ ensemble.json, config.yaml when present)."""
    metrics_path = path / METRICS_FILE
    if not metrics_path.is_file():
        raise ReportError(f"run {path}: {metrics_path} not found")
    overall = json.loads(metrics_path.read_text()).get("overall")
    if not overall:
        raise ReportError(f"{metrics_path}: no 'overall' scores (are all folds trained?)")
    oof = read_predictions(path / OOF_FILE)
    ens_path, cfg_path = path / ENSEMBLE_FILE, path / CONFIG_FILE
    ens = json.loads(ens_path.read_text()) if ens_path.is_file() else None
    config = (yaml.safe_load(cfg_path.read_text()) or {}) if cfg_path.is_file() else {}
    return Run(path.name or str(path), path, overall, oof, ens, config)


# ----------------------------------------------------------------------------- figures


def _save(fig: Any, out: Path, name: str) -> str:
    """Save and close a figure; return its name relative to the page."""
    import matplotlib.pyplot as plt

    try:
        with atomic_path(out / name) as tmp:
            fig.savefig(tmp, format="png", dpi=90, bbox_inches="tight")
    finally:
        plt.close(fig)
    return name


def per_class_plot(runs: list[Run], out: Path) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(8, 1.2 * len(CLASSES)), 4))
    width = 0.8 / len(runs)
    x = np.arange(len(CLASSES))
    for i, run in enumerate(runs):
        acc = [run.overall["per_class_accuracy"].get(c) for c in CLASSES]
        vals = [np.nan if a is None else a for a in acc]
        ax.bar(x + (i - (len(runs) - 1) / 2) * width, vals, width, label=run.name)
    ax.set_xticks(x, CLASSES, rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy (recall)")
    ax.legend(fontsize=8)
    return _save(fig, out, "per_class_accuracy.png")


def confusion_plot(run: Run, index: int, out: Path) -> str:
    import matplotlib.pyplot as plt

    matrix = np.asarray(run.overall["confusion_matrix"], dtype=np.float64)
    support = matrix.sum(axis=1, keepdims=True)
    norm = np.divide(matrix, support, out=np.zeros_like(matrix), where=support > 0)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    im = ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
    for (r, c), v in np.ndenumerate(norm):
        ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=7,
                color="white" if v > 0.5 else "black")
    ax.set_xticks(range(len(CLASSES)), CLASSES, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(CLASSES)), CLASSES, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{run.name}: confusion (rows normalised)")
    fig.colorbar(im, ax=ax, fraction=0.046)
    return _save(fig, out, f"confusion_{index}.png")


def untempered(probs: np.ndarray, temperature: float) -> np.ndarray:
    """p ** T renormalised: undoes a temperature T applied as softmax(z / T)."""
    logp = temperature * np.log(np.clip(probs, 1e-300, None))
    logp -= logp.max(axis=1, keepdims=True)
    p = np.exp(logp)
    return p / p.sum(axis=1, keepdims=True)


def _reliability_points(y: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean confidence, accuracy) of the non-empty bins, binned as the ECE bins them."""
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y
    edges = np.linspace(0.0, 1.0, N_BINS + 1)
    bins = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, N_BINS - 1)
    used = [b for b in range(N_BINS) if (bins == b).any()]
    return (np.array([conf[bins == b].mean() for b in used]),
            np.array([correct[bins == b].mean() for b in used]))


def reliability_plot(
    run: Run, index: int, y: np.ndarray, out: Path
) -> tuple[str, list[tuple[str, float]]]:
    """The figure and its (curve, ECE) pairs: before/after T for an ensemble, else as is."""
    import matplotlib.pyplot as plt

    probs = probs_of(run.oof)
    temperature = (run.ensemble or {}).get("temperature")
    if temperature is not None:
        curves = [(f"before temperature (p^{fmt(temperature, 3)})", untempered(probs, temperature)),
                  (f"after temperature (T={fmt(temperature, 3)})", probs)]
    else:
        curves = [("as is", probs)]
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect")
    eces = []
    for label, p in curves:
        ece = expected_calibration_error(y, p, N_BINS)
        eces.append((label, ece))
        xs, ys = _reliability_points(y, p)
        ax.plot(xs, ys, "o-", label=f"{label}: ECE {fmt(ece)}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (top class)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{run.name}: reliability")
    ax.legend(fontsize=8)
    return _save(fig, out, f"reliability_{index}.png"), eces


def priors_plot(priors: dict[str, Any], kinds: tuple[str, ...], name: str, out: Path) -> str:
    """Sites x classes heatmaps, one panel per kind (mean prediction, EM prior, truth)."""
    import matplotlib.pyplot as plt

    sites = list(priors)
    fig, axes = plt.subplots(1, len(kinds), figsize=(4.2 * len(kinds), 1 + 0.3 * len(sites)),
                             squeeze=False)
    for ax, kind in zip(axes[0], kinds, strict=True):
        grid = np.array([[priors[s][kind][c] for c in CLASSES] for s in sites])
        ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        ax.set_title(kind)
        ax.set_xticks(range(len(CLASSES)), CLASSES, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(len(sites)), sites, fontsize=7)
    return _save(fig, out, name)


# ----------------------------------------------------------------------------- tables


def _table(head: list[str], rows: list[list[str]]) -> str:
    """An HTML table; cells are escaped here, so callers pass plain text."""
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def model_table(runs: list[Run]) -> str:
    """metrics.json `overall` per run; an ensemble adds its nested estimate from ensemble.json."""
    head = ["run", "log loss", "nested log loss", *(label for _, label in TABLE_KEYS[1:])]
    rows = []
    for run in runs:
        nested = ((run.ensemble or {}).get("final") or {}).get("nested") or {}
        rows.append([run.name, fmt(run.overall["log_loss"]), fmt(nested.get("log_loss")),
                     *(fmt(run.overall[k]) for k, _ in TABLE_KEYS[1:])])
    return _table(head, rows)


def ensemble_section(run: Run, out: Path, index: int) -> str:
    ens = run.ensemble or {}
    parts = [f"<h3>{html.escape(run.name)}</h3>",
             f"<p>method: {html.escape(str(ens.get('method')))}, space: "
             f"{html.escape(str(ens.get('space')))}, temperature: "
             f"{fmt(ens.get('temperature'))}</p>"]
    final = ens.get("final") or {}
    parts.append(_table(["estimate", *(label for _, label in TABLE_KEYS)], [
        [kind, *(fmt((final.get(kind) or {}).get(k)) for k, _ in TABLE_KEYS)]
        for kind in ("in_sample", "nested")
    ]))
    weights = ens.get("weights") or {}
    parts.append("<h4>weights</h4>" + _table(["run", "weight"],
                                             [[n, fmt(w)] for n, w in weights.items()]))
    site = ens.get("site_adapt") or {}
    parts.append("<h4>site adaptation</h4>")
    if "skipped" in site or "priors" not in site:
        parts.append(f"<p>mode {html.escape(str(site.get('mode')))}; "
                     f"{html.escape(str(site.get('skipped', 'no per-site priors')))}</p>")
        return "\n".join(parts)
    ins, nested = site.get("in_sample") or {}, site.get("nested") or {}
    parts.append(
        f"<p>strength {html.escape(str(site.get('strength')))}, "
        f"{'applied' if site.get('applied') else 'not applied'}; log loss in-sample "
        f"{fmt(ins.get('before'))} → {fmt(ins.get('after'))}, nested "
        f"{fmt(nested.get('before'))} → {fmt(nested.get('after'))}</p>")
    oof_priors = site["priors"].get("oof") or {}
    if oof_priors:
        rows = []
        for name, entry in oof_priors.items():
            truth = np.array([entry["true"][c] for c in CLASSES])
            dist = [np.abs(np.array([entry[k][c] for c in CLASSES]) - truth).sum()
                    for k in ("before", "after")]
            rows.append([name, str(entry["n"]), fmt(dist[0]), fmt(dist[1])])
        parts.append("<p>OOF sites: L1 distance of the mean prediction (before) and of the "
                     "adapted prior (after) to the site's true class mix.</p>")
        parts.append(_table(["site", "n", "before vs true", "after vs true"], rows))
        png = priors_plot(oof_priors, ("before", "after", "true"), f"priors_oof_{index}.png", out)
        parts.append(f'<img src="{png}" alt="OOF site priors">')
    test_priors = site["priors"].get("test") or {}
    if test_priors:
        png = priors_plot(test_priors, ("before", "after"), f"priors_test_{index}.png", out)
        parts.append(f'<p>test sites (no labels)</p><img src="{png}" alt="test site priors">')
    return "\n".join(parts)


def site_table(runs: list[Run], primary: Run, truth: pd.DataFrame) -> str:
    """Per site: images, then log loss and accuracy of each run; hardest (primary) first."""
    class_index = {c: i for i, c in enumerate(CLASSES)}
    stats: dict[str, dict[str, tuple[int, float, float]]] = {}
    for run in runs:
        frame = run.oof.merge(truth, on=ID_COL, how="left")
        y = frame[LABEL_COL].map(class_index).to_numpy(dtype=np.int64)
        probs = probs_of(frame)
        for site, rows in frame.groupby(SITE_COL).indices.items():
            acc = float((probs[rows].argmax(axis=1) == y[rows]).mean())
            stats.setdefault(str(site), {})[run.name] = (
                len(rows), log_loss(y[rows], probs[rows]), acc)
    order = sorted(stats, key=lambda s: -stats[s].get(primary.name, (0, -np.inf, 0))[1])
    head = ["site", "n"] + [f"{r.name} {what}" for r in runs for what in ("log loss", "accuracy")]
    rows = []
    for site in order:
        n = next(iter(stats[site].values()))[0]
        cells = [site, str(n)]
        for run in runs:
            _, loss, acc = stats[site].get(run.name, (0, float("nan"), float("nan")))
            cells += [fmt(loss), fmt(acc)]
        rows.append(cells)
    return _table(head, rows)


# ----------------------------------------------------------------------------- gallery


def crop_threshold(runs: list[Run]) -> float | None:
    """The crop threshold a crop-view run trained at: the given runs' configs, then the
    ensemble members' configs; None when no run used crops."""
    configs = [r.config for r in runs]
    for run in runs:
        for member in ((run.ensemble or {}).get("runs") or {}).values():
            path = Path(member) / CONFIG_FILE
            if path.is_file():
                configs.append(yaml.safe_load(path.read_text()) or {})
    for cfg in configs:
        if "crop" in str(cfg.get("view", "")) and cfg.get("crop_threshold") is not None:
            return float(cfg["crop_threshold"])
    return None


def image_sources(
    ids: list[str], truth: pd.DataFrame, data_root: Path, manifest: Path | None,
    threshold: float | None,
) -> dict[str, Path]:
    """id -> the picture to show: the crop at `threshold`, else the best crop, else the frame."""
    frames = truth.set_index(ID_COL)[FILEPATH_COL]
    out = {i: data_root / frames.loc[i] for i in ids}
    if manifest is None:
        return out
    from kaggle_style.detect.crops import crop_paths, load_manifest

    table = load_manifest(manifest)
    chosen: dict[str, list[Path]] = {}
    if threshold is not None:
        try:
            chosen = crop_paths(table, threshold)
        except ValueError:
            chosen = {}
    best = (table[~table["fallback"]].sort_values("conf", ascending=False)
            .drop_duplicates(ID_COL).set_index(ID_COL)["crop_path"])
    for i in ids:
        if chosen.get(i):
            out[i] = chosen[i][0]
        elif i in best.index:
            out[i] = Path(best.loc[i])
    return out


def gallery(
    run: Run, truth: pd.DataFrame, data_root: Path, out: Path, n: int,
    manifest: Path | None, threshold: float | None,
) -> str:
    """The `n` most confidently wrong OOF images of `run` as thumbnails with their labels."""
    from PIL import Image

    frame = run.oof.merge(truth, on=ID_COL, how="left")
    probs = probs_of(frame)
    pred = probs.argmax(axis=1)
    conf = probs.max(axis=1)
    true_idx = frame[LABEL_COL].map({c: i for i, c in enumerate(CLASSES)}).to_numpy()
    wrong = np.flatnonzero(pred != true_idx)
    wrong = wrong[np.argsort(-conf[wrong], kind="stable")][:n]
    ids = [str(frame[ID_COL].iloc[w]) for w in wrong]
    sources = image_sources(ids, truth, data_root, manifest, threshold)
    cards = []
    for k, (row, image_id) in enumerate(zip(wrong, ids, strict=True)):
        name = f"thumb_{k:03d}.jpg"
        try:
            with Image.open(sources[image_id]) as img:
                img = img.convert("RGB")
                img.thumbnail(THUMB_SIZE)
                with atomic_path(out / name) as tmp:
                    img.save(tmp, format="JPEG", quality=85)
        except OSError as err:
            print(f"report: skipping {image_id} in the gallery: {err}", file=sys.stderr)
            continue
        caption = (f"{image_id}: true {frame[LABEL_COL].iloc[row]}, predicted "
                   f"{CLASSES[pred[row]]} ({fmt(conf[row])})")
        cards.append(f'<figure><img src="{name}" alt="{html.escape(image_id)}">'
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    if not cards:
        return "<p>no wrong OOF predictions to show.</p>"
    return '<div class="gallery">' + "".join(cards) + "</div>"


# ----------------------------------------------------------------------------- the page

STYLE = """body{font-family:sans-serif;margin:2em;max-width:1400px}
table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:right}td:first-child,th:first-child{text-align:left}img{max-width:100%}
.gallery{display:flex;flex-wrap:wrap;gap:10px}figure{margin:0;width:260px}
figcaption{font-size:12px}"""


def build_report(
    run_dirs: list[Path], data: Path, out: Path, crops: Path | None = None, n_gallery: int = 12
) -> Path:
    """Write `out/index.html` and its images; return the page's path."""
    import matplotlib

    matplotlib.use("Agg")
    runs = [load_run(Path(r)) for r in run_dirs]
    if not runs:
        raise ReportError("no runs to report on")
    truth = load_competition_data(data).train[[ID_COL, FILEPATH_COL, SITE_COL, LABEL_COL]]
    known = set(truth[ID_COL])
    class_index = {c: i for i, c in enumerate(CLASSES)}
    for run in runs:
        unknown = [i for i in run.oof[ID_COL] if i not in known]
        if unknown:
            raise ReportError(f"run {run.name}: {len(unknown)} OOF id(s) are not in {data}")
    ensembles = [r for r in runs if r.ensemble is not None]
    primary = ensembles[-1] if ensembles else runs[-1]  # the run the sites and gallery follow
    out.mkdir(parents=True, exist_ok=True)

    body = [f"<h1>Report: {html.escape(', '.join(r.name for r in runs))}</h1>",
            "<h2>Models (OOF)</h2>", model_table(runs),
            "<p>From each run's metrics.json (overall); the nested log loss is the ensemble's "
            "honest estimate from ensemble.json (final.nested).</p>",
            "<h2>Per-class accuracy</h2>",
            f'<img src="{per_class_plot(runs, out)}" alt="per-class accuracy">',
            "<h2>Confusion matrices</h2>"]
    body += [f'<img src="{confusion_plot(r, i, out)}" alt="confusion {html.escape(r.name)}">'
             for i, r in enumerate(runs)]
    body.append("<h2>Calibration</h2><p>Ensembles: 'before' is the OOF probabilities raised to "
                "the power T and renormalised (undoing the fitted temperature), 'after' the "
                "OOF probabilities as written.</p>")
    for i, run in enumerate(runs):
        y = run.oof[[ID_COL]].merge(truth, on=ID_COL, how="left")[LABEL_COL].map(class_index)
        png, eces = reliability_plot(run, i, y.to_numpy(dtype=np.int64), out)
        body.append(_table(["run", "curve", "ECE"], [[run.name, c, fmt(e)] for c, e in eces]))
        body.append(f'<img src="{png}" alt="reliability {html.escape(run.name)}">')
    if ensembles:
        body.append("<h2>Ensemble</h2>")
        body += [ensemble_section(r, out, i) for i, r in enumerate(ensembles)]
    body += [f"<h2>Sites (hardest first by {html.escape(primary.name)})</h2>",
             site_table(runs, primary, truth),
             f"<h2>Most confidently wrong ({html.escape(primary.name)} OOF)</h2>",
             gallery(primary, truth, Path(data), out, n_gallery, crops, crop_threshold(runs))]
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>kaggle-style report"
            f"</title><style>{STYLE}</style></head><body>\n" + "\n".join(body)
            + "\n</body></html>\n")
    return write_text(out / INDEX, page)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (model runs, ensembles)")
    parser.add_argument("--data", type=Path, required=True, help="DrivenData folder (sites)")
    parser.add_argument("--out", type=Path, required=True, help="report folder, e.g. reports/x")
    parser.add_argument("--crops", type=Path, help="crops manifest for the gallery thumbnails")
    parser.add_argument("--gallery", type=int, default=12, help="confidently wrong images (12)")


def run(args: argparse.Namespace) -> int:
    try:
        page = build_report(args.runs, args.data, args.out, args.crops, args.gallery)
    except (ReportError, PredictionError, TableError, ValueError, FileNotFoundError) as err:
        print(f"report: error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {page}")
    return 0
