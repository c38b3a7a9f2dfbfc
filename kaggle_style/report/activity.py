"""What the camera's clock adds to the report: activity by hour per class, sequences per site,
and the effect of the ensemble's time step.

Activity curves are what camera-trap ecologists draw (Ridout & Linkie 2009, the `overlap`
package): a von Mises kernel density of detection times over the 24-h day, night shaded, and
the coefficient of overlap (the area under both curves) between two of them. "Observed" weighs
each labelled image by its true class, "predicted" by the model's probabilities, so the two
agree where the model is right about when each class is about.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kaggle_style.constants import ID_COL, LABEL_COL, SITE_COL
from kaggle_style.meta.infobar import DAY_HOURS
from kaggle_style.prediction_files import probs_of
from kaggle_style.report.plots import save
from kaggle_style.report.runs import Run, fmt, table

GRID = np.linspace(0.0, 24.0, 289)  # every 5 minutes, both ends
KAPPA = 8.0  # von Mises concentration: a kernel about 1.3 h wide (sd)
MAX_SITE_ROWS = 200  # sequence table rows (most images first); the page stays readable


def circular_density(hours: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Kernel densities on GRID (per hour, integrating to 1 over 24 h), one column per weight
    column; a column of zero weight gives NaN."""
    angle = 2 * np.pi * (GRID[:, None] - hours[None, :]) / 24.0
    kernel = np.exp(KAPPA * (np.cos(angle) - 1.0))  # unnormalised von Mises, max 1
    kernel /= kernel.sum(axis=0, keepdims=True) * (GRID[1] - GRID[0])  # each one integrates to 1
    mass = weights.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (kernel @ weights) / mass


def overlap(f: np.ndarray, g: np.ndarray) -> float:
    """Coefficient of overlap of two densities on GRID (1: the same activity pattern)."""
    both = np.minimum(f, g)
    return float(np.sum((both[1:] + both[:-1]) / 2) * (GRID[1] - GRID[0]))


def is_night(hours: np.ndarray) -> np.ndarray:
    return (hours < DAY_HOURS[0]) | (hours >= DAY_HOURS[1])


def _timed(meta: pd.DataFrame, ids: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(positions in `ids` with a read hour, their hours)."""
    hours = meta.set_index(ID_COL)["hour"].reindex(ids.astype(str)).to_numpy(dtype=np.float64)
    rows = np.flatnonzero(np.isfinite(hours))
    return rows, hours[rows]


def activity(meta: pd.DataFrame, truth: pd.DataFrame, run: Run) -> dict[str, Any]:
    """Curves and night shares: observed (train labels), predicted on OOF and on test."""
    classes = run.classes
    frame = run.oof.merge(truth[[ID_COL, LABEL_COL]], on=ID_COL, how="left")
    rows, hours = _timed(meta, frame[ID_COL])
    index = {c: i for i, c in enumerate(classes)}
    y = frame[LABEL_COL].map(index).to_numpy()[rows].astype(np.int64)
    curves = {
        "observed": (hours, np.eye(len(classes))[y]),
        "predicted (OOF)": (hours, probs_of(frame, classes)[rows]),
    }
    if run.test is not None:
        test_rows, test_hours = _timed(meta, run.test[ID_COL])
        if len(test_rows):
            curves["predicted (test)"] = (test_hours, probs_of(run.test, classes)[test_rows])
    out: dict[str, Any] = {"n": {}, "density": {}, "night": {}}
    for name, (h, w) in curves.items():
        out["n"][name] = len(h)
        out["density"][name] = circular_density(h, w)
        with np.errstate(invalid="ignore", divide="ignore"):
            out["night"][name] = (w * is_night(h)[:, None]).sum(axis=0) / w.sum(axis=0)
    return out


def activity_plot(curves: dict[str, Any], out: Path, classes: tuple[str, ...]) -> str:
    import matplotlib.pyplot as plt

    rows = -(-len(classes) // 4)
    fig, axes = plt.subplots(rows, 4, figsize=(14, 2.75 * rows), sharex=True, squeeze=False)
    styles = {"observed": "k-", "predicted (OOF)": "C0--", "predicted (test)": "C1:"}
    for ax in axes.ravel()[len(classes) :]:
        ax.set_visible(False)
    for c, (ax, name) in enumerate(zip(axes.ravel(), classes, strict=False)):
        ax.axvspan(0, DAY_HOURS[0], color="0.88", lw=0)
        ax.axvspan(DAY_HOURS[1], 24, color="0.88", lw=0)
        for label, density in curves["density"].items():
            ax.plot(GRID, density[:, c], styles.get(label, "-"), lw=1.5, label=label)
        ax.set_title(name, fontsize=9)
        ax.set_xlim(0, 24)
        ax.set_xticks([0, 6, 12, 18, 24])
        ax.set_ylim(bottom=0)
    axes[0, 0].legend(fontsize=7)
    fig.supxlabel("hour of day (night shaded)")
    fig.supylabel("activity density")
    fig.tight_layout()
    return save(fig, out, "activity_by_hour.png")


def activity_section(meta: pd.DataFrame, truth: pd.DataFrame, run: Run, out: Path) -> str:
    curves = activity(meta, truth, run)
    if curves["n"]["observed"] == 0:
        return "<p>no OOF image has a readable clock in meta.csv: no activity curves.</p>"
    names = list(curves["density"])
    rows = []
    observed = curves["density"]["observed"]
    for c, name in enumerate(run.classes):
        cells = [name]
        for label in names:
            cells.append(fmt(curves["night"][label][c], 3))
        cells.append(fmt(overlap(observed[:, c], curves["density"]["predicted (OOF)"][:, c]), 3))
        rows.append(cells)
    counts = ", ".join(f"{k} {v} images" for k, v in curves["n"].items())
    return (
        f"<p>{html.escape(run.name)}, images with a readable clock: {html.escape(counts)}. "
        "Night: before {:g} h or from {:g} h.</p>".format(*DAY_HOURS)
        + table(
            ["class", *(f"night share, {n}" for n in names), "overlap observed vs predicted (OOF)"],
            rows,
        )
        + f'<img src="{activity_plot(curves, out, run.classes)}" alt="activity by hour per class">'
    )


def sequence_section(meta: pd.DataFrame, sites: pd.DataFrame, truth: pd.DataFrame, run: Run) -> str:
    """Per site: images, clocks read, sequences (independent events), frames per sequence and
    the commonest classes by events: true labels in train, the run's predictions in test."""
    frame = sites[[ID_COL, SITE_COL, "split"]].merge(meta, on=ID_COL, how="inner")
    if frame.empty:
        return "<p>meta.csv has no row for these data's ids.</p>"
    label = truth.set_index(ID_COL)[LABEL_COL]
    if run.test is not None:
        predicted = pd.Series(
            np.asarray(run.classes)[probs_of(run.test, run.classes).argmax(axis=1)],
            index=run.test[ID_COL].astype(str),
        )
        label = pd.concat([label, predicted])
    frame["class"] = frame[ID_COL].map(label)
    rows = []
    for (split, site), group in frame.groupby(["split", SITE_COL], sort=True):
        sizes = group.groupby("sequence").size()
        events = (
            group.dropna(subset=["class"])
            .groupby("sequence")["class"]
            .agg(lambda s: s.mode().iloc[0])
        )
        top = events.value_counts().head(3)
        rows.append(
            (
                len(group),
                [
                    str(site),
                    str(split),
                    str(len(group)),
                    str(int((group["datetime"] != "").sum())),
                    str(len(sizes)),
                    fmt(sizes.mean(), 2),
                    str(int(sizes.max())),
                    ", ".join(f"{k} {v}" for k, v in top.items()),
                ],
            )
        )
    rows.sort(key=lambda r: -r[0])
    shown = [r[1] for r in rows[:MAX_SITE_ROWS]]
    note = (
        f"<p>{frame['sequence'].nunique()} sequences in {len(frame)} images "
        f"({len(rows)} sites"
        + (f"; the {MAX_SITE_ROWS} with most images shown" if len(rows) > MAX_SITE_ROWS else "")
        + "). Events by class: true labels (train), the run's most likely "
        "class (test), each sequence counted once by its commonest class.</p>"
    )
    return note + table(
        [
            "site",
            "split",
            "images",
            "clocks read",
            "sequences",
            "frames per sequence",
            "longest",
            "events by class (top 3)",
        ],
        shown,
    )


def time_effect_section(ens: dict[str, Any], out: Path, index: int) -> str:
    """How the fitted time step moves each class's log-probability over the day."""
    step = ens.get("time")
    if not isinstance(step, dict):
        return "<p>this ensemble has no time step (ensemble.json has no 'time').</p>"
    nested = step.get("nested") or {}
    ins = step.get("in_sample") or {}
    text = (
        f"<p>time of day: mode {html.escape(str(step.get('mode')))}, "
        f"{'applied' if step.get('applied') else 'not applied'}; log loss in-sample "
        f"{fmt(ins.get('before'))} → {fmt(ins.get('after'))}, nested "
        f"{fmt(nested.get('before'))} → {fmt(nested.get('after'))}"
        + (f"; {html.escape(str(step['skipped']))}" if "skipped" in step else "")
        + "</p>"
    )
    if "coef" not in step:
        return text
    from kaggle_style.ensemble.sequences import time_features

    coef = np.asarray(step["coef"], dtype=np.float64)
    features = time_features(
        GRID, is_night(GRID).astype(float), len(GRID), int(step.get("harmonics", 1))
    )
    shift = features @ coef.T
    shift -= shift.mean(axis=1, keepdims=True)  # only differences between classes matter
    classes = tuple(ens.get("classes") or (f"class {c}" for c in range(shift.shape[1])))
    return text + f'<img src="{_shift_plot(shift, out, index, classes)}" alt="time step effect">'


def _shift_plot(shift: np.ndarray, out: Path, index: int, classes: tuple[str, ...]) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    ax.axvspan(0, DAY_HOURS[0], color="0.88", lw=0)
    ax.axvspan(DAY_HOURS[1], 24, color="0.88", lw=0)
    for c, name in enumerate(classes):
        ax.plot(GRID, shift[:, c], lw=1.5, label=name)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xlim(0, 24)
    ax.set_xticks(range(0, 25, 3))
    ax.set_xlabel("hour of day (night shaded; the night flag read as the hour implies)")
    ax.set_ylabel("log-probability shift vs mean class")
    ax.legend(fontsize=7, ncol=2)
    return save(fig, out, f"time_effect_{index}.png")


MAX_SITE_PANELS = 12  # the sites with most events; a page of small multiples stays readable


def site_activity_plot(
    events: pd.DataFrame,
    out: Path,
    name: str = "activity_by_site.png",
    classes: tuple[str, ...] | None = None,
) -> str | None:
    """Activity by hour of independent events (timed ones), one panel per site, one curve per
    class (in `classes`' order, which fixes the colours; else the events' own, sorted); None
    when no event has a time."""
    import matplotlib.pyplot as plt

    timed = events[events["timed"]]
    if timed.empty:
        return None
    if classes is None:
        classes = tuple(sorted(map(str, events["class"].unique())))
    hours = pd.to_datetime(timed["start"], format="ISO8601")
    timed = timed.assign(hour=hours.dt.hour + hours.dt.minute / 60 + hours.dt.second / 3600)
    sites = timed[SITE_COL].value_counts().index[:MAX_SITE_PANELS]
    cols = min(4, len(sites))
    rows = -(-len(sites) // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.6 * cols, 2.6 * rows), squeeze=False, sharex=True
    )
    for ax, site in zip(axes.ravel(), sites, strict=False):
        group = timed[timed[SITE_COL] == site]
        ax.axvspan(0, DAY_HOURS[0], color="0.88", lw=0)
        ax.axvspan(DAY_HOURS[1], 24, color="0.88", lw=0)
        for c, cls in enumerate(classes):
            h = group.loc[group["class"] == cls, "hour"].to_numpy(dtype=np.float64)
            if len(h):
                density = circular_density(h, np.ones((len(h), 1)))[:, 0]
                ax.plot(GRID, density, color=f"C{c}", lw=1.3, label=f"{cls} ({len(h)})")
        ax.set_title(f"{site}: {len(group)} events", fontsize=9)
        ax.set_xlim(0, 24)
        ax.set_xticks([0, 6, 12, 18, 24])
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=6)
    for ax in axes.ravel()[len(sites) :]:
        ax.set_visible(False)
    fig.supxlabel("hour of day (night shaded)")
    fig.supylabel("activity density of independent events")
    fig.tight_layout()
    return save(fig, out, name)


def test_records_section(meta: pd.DataFrame, test: pd.DataFrame, run: Run, out: Path) -> str:
    """The record table of the test set by the run's most likely class (what `export --format
    records` writes), with meta.csv's clocks."""
    from kaggle_style.outputs.classified import Classified, Thresholds
    from kaggle_style.outputs.records import DEFAULT_MINUTES, count_table, independent_events
    from kaggle_style.outputs.records import records as records_of

    if run.test is None:
        return f"<p>{html.escape(run.name)} has no test.csv: no test records.</p>"
    frame = run.test.merge(test[[ID_COL, SITE_COL]], on=ID_COL, how="left").merge(
        meta[[ID_COL, "datetime", "sequence"]], on=ID_COL, how="left"
    )
    frame["file"] = frame[ID_COL]
    frame["datetime"] = frame["datetime"].fillna("")
    frame["sequence"] = frame["sequence"].fillna(frame[ID_COL])
    classified = Classified(frame, run.name, "", classes=run.classes)
    events = independent_events(records_of(classified, Thresholds()), DEFAULT_MINUTES)
    return (
        f"<p>{html.escape(run.name)}, test set: each image counted as its most likely "
        "class.</p>"
        + records_section(events, count_table(events), DEFAULT_MINUTES, out, run.classes)
    )


def records_section(
    events: pd.DataFrame,
    counts: pd.DataFrame,
    minutes: float,
    out: Path,
    classes: tuple[str, ...] = (),
) -> str:
    """Independent events per site and class, and per-site activity (the record table)."""
    from kaggle_style.outputs.records import site_by_class

    if events.empty:
        return "<p>no image was given an animal class: no records.</p>"
    wide = site_by_class(counts, classes)
    untimed = int(counts["untimed_images"].sum())
    rows = [
        [str(site), *(str(v) for v in row), str(int(row.sum()))] for site, row in wide.iterrows()
    ]
    text = (
        f"<p>Independent events: records of one class at one site at least {minutes:g} "
        f"minutes after that class's last independent record there. {untimed} record(s) "
        "with an unread clock are counted apart (not in this table).</p>"
        + table([SITE_COL, *wide.columns, "all"], rows[:MAX_SITE_ROWS])
    )
    png = site_activity_plot(events, out, classes=classes or None)
    return text + (f'<img src="{png}" alt="activity by hour per site">' if png else "")
