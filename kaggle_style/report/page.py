"""One self-contained HTML page comparing runs and an ensemble (`kaggle-style report`)."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

from kaggle_style.constants import FILEPATH_COL, ID_COL, LABEL_COL, SITE_COL
from kaggle_style.data.tables import CompetitionData, load_competition_data
from kaggle_style.files import atomic_folder, check_outputs, write_text
from kaggle_style.report.activity import (
    activity_section,
    sequence_section,
    test_records_section,
    time_effect_section,
)
from kaggle_style.report.gallery import crop_threshold, gallery
from kaggle_style.report.plots import confusion_plot, per_class_plot, reliability_plot
from kaggle_style.report.runs import ReportError, Run, fmt, load_run, table
from kaggle_style.report.sections import ensemble_section, model_table, site_table
from kaggle_style.run_contract import check_run_task
from kaggle_style.task import Task, conservision

INDEX = "index.html"
STYLE = """body{font-family:sans-serif;margin:2em;max-width:1400px}
table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:right}td:first-child,th:first-child{text-align:left}img{max-width:100%}
.gallery{display:flex;flex-wrap:wrap;gap:10px}figure{margin:0;width:260px}
figcaption{font-size:12px}"""


def build_report(
    run_dirs: list[Path],
    data: Path,
    out: Path,
    crops: Path | None = None,
    n_gallery: int = 12,
    meta: Path | None = None,
    task: Task | None = None,
) -> Path:
    """Write `out/index.html` and its images; return the page's path.

    The folder is written aside and swapped in whole: an interrupted report leaves the old page
    with its own figures, and no figure of an older report survives beside a new page."""
    import matplotlib

    matplotlib.use("Agg")
    check_outputs(
        {"--out": out},
        {**{f"run {r}": r for r in run_dirs}, "--data": data, "--crops": crops, "--meta": meta},
    )
    task = task or conservision()
    for run_dir in run_dirs:
        check_run_task(run_dir, task)
    runs = [load_run(Path(r)) for r in run_dirs]
    if not runs:
        raise ReportError("no runs to report on; give one or more run folders")
    for run in runs:
        task.check_classes(run.classes, f"run {run.name}")
    dataset = load_competition_data(data, task)
    truth = dataset.train[[ID_COL, FILEPATH_COL, SITE_COL, LABEL_COL]]
    known = set(truth[ID_COL])
    for run in runs:
        unknown = [i for i in run.oof[ID_COL] if i not in known]
        if unknown:
            raise ReportError(
                f"run {run.name}: {len(unknown)} OOF id(s) are not in {data}; "
                "give the data folder the run was trained on"
            )
    # Names (runs, sites, classes) are plain text in every figure: a `$` is no mathtext.
    with atomic_folder(out) as folder, matplotlib.rc_context({"text.parse_math": False}):
        _write_page(runs, dataset, truth, Path(data), folder, crops, n_gallery, meta)
    return Path(out) / INDEX


def _write_page(
    runs: list[Run],
    dataset: CompetitionData,
    truth: pd.DataFrame,
    data: Path,
    out: Path,
    crops: Path | None,
    n_gallery: int,
    meta: Path | None,
) -> None:
    ensembles = [r for r in runs if r.ensemble is not None]
    primary = ensembles[-1] if ensembles else runs[-1]  # the run the sites and gallery follow
    body = [
        f"<h1>Report: {html.escape(', '.join(r.name for r in runs))}</h1>",
        "<h2>Models (OOF)</h2>",
        model_table(runs),
        "<p>From each run's metrics.json (overall); the nested log loss is the ensemble's "
        "honest estimate from ensemble.json (final.nested).</p>",
        "<h2>Per-class accuracy</h2>",
        f'<img src="{per_class_plot(runs, out)}" alt="per-class accuracy">',
        "<h2>Confusion matrices</h2>",
    ]
    body += [
        f'<img src="{confusion_plot(r, i, out)}" alt="confusion {html.escape(r.name)}">'
        for i, r in enumerate(runs)
    ]
    body.append(
        "<h2>Calibration</h2><p>Ensembles: 'before' is the OOF probabilities raised to "
        "the power T and renormalised (undoing the fitted temperature), 'after' the "
        "OOF probabilities as written.</p>"
    )
    for i, run in enumerate(runs):
        index = {c: i for i, c in enumerate(run.classes)}
        y = run.oof[[ID_COL]].merge(truth, on=ID_COL, how="left")[LABEL_COL].map(index)
        png, eces = reliability_plot(run, i, y.to_numpy(dtype=np.int64), out)
        body.append(table(["run", "curve", "ECE"], [[run.name, c, fmt(e)] for c, e in eces]))
        body.append(f'<img src="{png}" alt="reliability {html.escape(run.name)}">')
    if ensembles:
        body.append("<h2>Ensemble</h2>")
        body += [ensemble_section(r, out, i) for i, r in enumerate(ensembles)]
    if dataset.task.camera_trap_parts:
        clocks = _clock_sections(meta, dataset.train, dataset.test, truth, primary, ensembles, out)
        body.append(clocks)
    else:
        body.append(
            f"<p>task {html.escape(dataset.task.name)} has no camera_trap part: activity by "
            "hour, sequences and records are left out.</p>"
        )
    body += [
        f"<h2>Sites (hardest first by {html.escape(primary.name)})</h2>",
        site_table(runs, primary, truth),
        f"<h2>Most confidently wrong ({html.escape(primary.name)} OOF)</h2>",
        gallery(primary, truth, data, out, n_gallery, crops, crop_threshold(runs)),
    ]
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>kaggle-style report"
        f"</title><style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
    write_text(out / INDEX, page)


def _clock_sections(
    meta: Path | None,
    train: pd.DataFrame,
    test: pd.DataFrame,
    truth: pd.DataFrame,
    primary: Run,
    ensembles: list[Run],
    out: Path,
) -> str:
    """Activity by hour, sequences per site and the time step's effect (needs meta.csv)."""
    from kaggle_style.data.meta_file import read_meta

    parts = ["<h2>Activity by hour</h2>"]
    if meta is None:
        return "\n".join(
            [
                *parts,
                "<p>no meta.csv given (--meta): run `kaggle-style meta` "
                "to read the cameras' clocks.</p>",
            ]
        )
    frame = read_meta(meta)
    sites = pd.concat(
        [
            train[[ID_COL, SITE_COL]].assign(split="train"),
            test[[ID_COL, SITE_COL]].assign(split="test"),
        ],
        ignore_index=True,
    )
    parts.append(activity_section(frame, truth, primary, out))
    parts += [
        "<h2>Sequences per site</h2>",
        sequence_section(frame, sites, truth, primary),
        "<h2>Independent events per site (test)</h2>",
        test_records_section(frame, test, primary, out),
    ]
    if ensembles:
        parts.append("<h2>Time of day in the ensemble</h2>")
        parts += [time_effect_section(r.ensemble or {}, out, i) for i, r in enumerate(ensembles)]
    return "\n".join(parts)
