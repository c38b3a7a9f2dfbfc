"""The report's tables: runs, the ensemble and its second-stage steps, sites."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

from kaggle_style.constants import ENSEMBLE_FILE, ID_COL, LABEL_COL, SITE_COL
from kaggle_style.ensemble.schema import EnsembleReport
from kaggle_style.ensemble.steps import STEPS, SiteAdaptation
from kaggle_style.metrics import log_loss
from kaggle_style.prediction_files import probs_of
from kaggle_style.report.plots import priors_plot
from kaggle_style.report.runs import TABLE_KEYS, Run, fmt, table


def _report(run: Run) -> EnsembleReport:
    return EnsembleReport.from_dict(run.ensemble or {}, str(run.path / ENSEMBLE_FILE))


def model_table(runs: list[Run]) -> str:
    """metrics.json `overall` per run; an ensemble adds its nested estimate from ensemble.json."""
    head = ["run", "log loss", "nested log loss", *(label for _, label in TABLE_KEYS[1:])]
    rows = []
    for run in runs:
        final = _report(run).final if run.ensemble is not None else None
        nested = final.nested.log_loss if final is not None and final.nested else None
        rows.append(
            [
                run.name,
                fmt(run.overall["log_loss"]),
                fmt(nested),
                *(fmt(run.overall[k]) for k, _ in TABLE_KEYS[1:]),
            ]
        )
    return table(head, rows)


def step_rows(ens: EnsembleReport) -> list[list[str]]:
    """One row per second-stage step: mode, applied, log loss before -> after (in-sample and
    nested), its chosen parameters or why it was skipped."""
    rows = []
    for step in STEPS:
        record = ens.step(step.key)
        if record is None:
            continue
        ins, nested = record.in_sample or {}, record.nested or {}
        note = (
            f"skipped: {record.skipped}"
            if record.skipped is not None
            else step.chosen(record.details())
        )
        rows.append(
            [
                step.title,
                str(record.mode),
                "yes" if record.applied else "no",
                fmt(ins.get("before")),
                fmt(ins.get("after")),
                fmt(nested.get("before")),
                fmt(nested.get("after")),
                note,
            ]
        )
    return rows


def steps_table(ens: EnsembleReport) -> str:
    rows = step_rows(ens)
    if not rows:
        return "<p>no second-stage steps in this ensemble.json.</p>"
    return table(
        [
            "step",
            "mode",
            "applied",
            "in-sample before",
            "in-sample after",
            "nested before",
            "nested after",
            "chosen",
        ],
        rows,
    )


def ensemble_section(run: Run, out: Path, index: int) -> str:
    ens = _report(run)
    parts = [
        f"<h3>{html.escape(run.name)}</h3>",
        f"<p>method: {html.escape(ens.method)}, space: {html.escape(ens.space)}, "
        f"temperature: {fmt(ens.temperature)}</p>",
    ]
    final = ens.final.model_dump() if ens.final is not None else {}
    parts.append(
        table(
            ["estimate", *(label for _, label in TABLE_KEYS)],
            [
                [kind, *(fmt((final.get(kind) or {}).get(k)) for k, _ in TABLE_KEYS)]
                for kind in ("in_sample", "nested")
            ],
        )
    )
    parts.append(
        "<h4>weights</h4>" + table(["run", "weight"], [[n, fmt(w)] for n, w in ens.weights.items()])
    )
    parts.append(
        "<h4>second-stage steps</h4><p>Each per-row step is applied (mode auto) only "
        "where its nested log loss, fitted without the held-out fold's labels, "
        "improves.</p>" + steps_table(ens)
    )
    record = ens.step(SiteAdaptation.key)
    site = record.details() if record is not None else {}
    parts.append("<h4>site adaptation</h4>")
    if "skipped" in site or "priors" not in site:
        parts.append(
            f"<p>mode {html.escape(str(site.get('mode')))}; "
            f"{html.escape(str(site.get('skipped', 'no per-site priors')))}</p>"
        )
        return "\n".join(parts)
    oof_priors = site["priors"].get("oof") or {}
    if oof_priors:
        rows = []
        for name, entry in oof_priors.items():
            classes = list(entry["true"])
            truth = np.array([entry["true"][c] for c in classes])
            dist = [
                np.abs(np.array([entry[k][c] for c in classes]) - truth).sum()
                for k in ("before", "after")
            ]
            rows.append([name, str(entry["n"]), fmt(dist[0]), fmt(dist[1])])
        parts.append(
            "<p>OOF sites: L1 distance of the mean prediction (before) and of the "
            "adapted prior (after) to the site's true class mix.</p>"
        )
        parts.append(table(["site", "n", "before vs true", "after vs true"], rows))
        png, shown = priors_plot(
            oof_priors, ("before", "after", "true"), f"priors_oof_{index}.png", out
        )
        parts.append(
            f"<p>heat map: the {shown} of {len(oof_priors)} sites whose adapted prior "
            f'is farthest from the truth</p><img src="{png}" alt="OOF site priors">'
        )
    test_priors = site["priors"].get("test") or {}
    if test_priors:
        png, shown = priors_plot(test_priors, ("before", "after"), f"priors_test_{index}.png", out)
        parts.append(
            f"<p>test sites (no labels): the {shown} largest of {len(test_priors)}</p>"
            f'<img src="{png}" alt="test site priors">'
        )
    return "\n".join(parts)


def site_table(runs: list[Run], primary: Run, truth: pd.DataFrame) -> str:
    """Per site: images, then log loss and accuracy of each run; hardest (primary) first."""
    stats: dict[str, dict[str, tuple[int, float, float]]] = {}
    for run in runs:
        frame = run.oof.merge(truth, on=ID_COL, how="left")
        index = {c: i for i, c in enumerate(run.classes)}
        y = frame[LABEL_COL].map(index).to_numpy(dtype=np.int64)
        probs = probs_of(frame, run.classes)
        for site, rows in frame.groupby(SITE_COL).indices.items():
            acc = float((probs[rows].argmax(axis=1) == y[rows]).mean())
            stats.setdefault(str(site), {})[run.name] = (
                len(rows),
                log_loss(y[rows], probs[rows]),
                acc,
            )
    order = sorted(stats, key=lambda s: -stats[s].get(primary.name, (0, -np.inf, 0))[1])
    head = ["site", "n"] + [f"{r.name} {what}" for r in runs for what in ("log loss", "accuracy")]
    site_rows: list[list[str]] = []
    for site in order:
        n = next(iter(stats[site].values()))[0]
        cells = [site, str(n)]
        for run in runs:
            _, loss, acc = stats[site].get(run.name, (0, float("nan"), float("nan")))
            cells += [fmt(loss), fmt(acc)]
        site_rows.append(cells)
    return table(head, site_rows)
