"""Predictions written in the format a user asks for: the CSV, a Camtrap DP package, a
MegaDetector batch-output file with classifications, or record tables (`predict --format`,
and `kaggle-style export` for a run's competition test set).

Above `deployment` (predict on new images), `report` (the per-site activity figure) and
`outputs/` (the formats), so that none of those imports another's layer.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeGuard

import numpy as np
import pandas as pd
from pydantic import Field

from kaggle_style.config import Fraction, NonNegative, stage_config
from kaggle_style.errors import UserError
from kaggle_style.files import check_outputs, write_csv
from kaggle_style.outputs.classified import Classified, Thresholds
from kaggle_style.outputs.metadata import Metadata, read_metadata
from kaggle_style.outputs.records import DEFAULT_MINUTES, ComparedTo
from kaggle_style.task import Task

if TYPE_CHECKING:
    from kaggle_style.deployment import DetectorChoice

Format = Literal["csv", "camtrap-dp", "md", "records"]
FORMATS: tuple[str, ...] = ("csv", "camtrap-dp", "md", "records")
RECORD_FILES = ("records.csv", "record_counts.csv", "site_by_class.csv")


def _is_format(fmt: str) -> TypeGuard[Format]:
    """`fmt` is one of FORMATS (the `--format` choices)."""
    return fmt in FORMATS


@dataclass
class OutputOptions:
    """What the user chose: the format, thresholds, the package metadata, the interval."""

    fmt: Format = "csv"
    thresholds: Thresholds = field(default_factory=Thresholds)
    metadata: Metadata | None = None
    minutes: float = DEFAULT_MINUTES
    compared_to: ComparedTo = "last_independent"

    @classmethod
    def checked(
        cls,
        fmt: str,
        top_k: int = 1,
        min_prob: float = 0.0,
        min_box_conf: float = 0.1,
        metadata: Path | None = None,
        minutes: float = DEFAULT_MINUTES,
        compared_to: ComparedTo = "last_independent",
    ) -> OutputOptions:
        """The options, every problem found before any image is read."""
        if not _is_format(fmt):
            raise UserError(f"--format {fmt}: choose one of {', '.join(FORMATS)}")
        if not np.isfinite(minutes) or minutes < 0:
            raise UserError(f"--independence-minutes {minutes}: give a number >= 0")
        meta = read_metadata(metadata) if fmt == "camtrap-dp" else None
        return cls(fmt, Thresholds(top_k, min_prob, min_box_conf), meta, minutes, compared_to)

    def needs_boxes(self) -> bool:
        return self.fmt in ("md", "camtrap-dp")


@stage_config
class OutputConfig:
    """What `predict` and `export` write: the format, the user's thresholds, the records' interval
    (their flags: `--format`, `--top-k`, ...)."""

    format: Format = "csv"
    """csv (one row per image), camtrap-dp (a package folder), md (MegaDetector JSON with
    classifications), records (a folder of record tables)"""
    top_k: Annotated[int, Field(ge=1)] = 1
    """at most this many classes per image (more than the classes: all of them)"""
    min_prob: Fraction = 0.0
    """keep a class only from this probability (0: no cut)"""
    min_box_conf: Fraction = 0.1
    """detector boxes from this confidence carry classes"""
    metadata: Path | None = None
    """camtrap-dp: YAML with project, contributors, timezone, sites"""
    independence_minutes: NonNegative = DEFAULT_MINUTES
    """records: minutes between independent events"""
    independence_from: ComparedTo = "last_independent"
    """records: measured from the last independent record (camtrapR's lastIndependentRecord)
    or from the last record"""

    def options(self) -> OutputOptions:
        """The checked options; a bad metadata file fails here, before any image is read."""
        return OutputOptions.checked(
            self.format,
            self.top_k,
            self.min_prob,
            self.min_box_conf,
            self.metadata,
            self.independence_minutes,
            self.independence_from,
        )


def write_output(classified: Classified, out: Path, options: OutputOptions) -> str:
    """Write `out` (a file for csv and md, a folder for camtrap-dp and records); return the
    line that tells the user what was written, and whether the thresholds left it empty."""
    done = _write_format(classified, Path(out), options)
    cut = options.thresholds.min_prob
    if options.fmt != "csv" and not (classified.probs.max(axis=1) >= cut).any():
        done += f"; empty: no image has a class at --min-prob {cut:g} or above"
    return done


def _write_format(classified: Classified, out: Path, options: OutputOptions) -> str:
    if options.fmt == "camtrap-dp":
        from kaggle_style.outputs.camtrap_dp import UNTIMED_FILE, write_camtrap_dp

        assert options.metadata is not None  # `checked` reads it for camtrap-dp
        n = write_camtrap_dp(classified, options.metadata, options.thresholds, out)
        untimed = (
            f"; {n['untimed']} image(s) with no readable clock listed in {out / UNTIMED_FILE}"
            if n["untimed"]
            else ""
        )
        return (
            f"Camtrap DP package {out}: {n['deployments']} deployments, {n['media']} media, "
            f"{n['observations']} observations{untimed}"
        )
    if options.fmt == "md":
        from kaggle_style.outputs.md_results import write_md_results

        write_md_results(classified, options.thresholds, out)
        return f"MegaDetector results with classifications -> {out}"
    if options.fmt == "records":
        return write_records(classified, out, options)
    frame = classified.images.copy()
    probs = classified.probs
    frame["top_class"] = np.asarray(classified.classes)[probs.argmax(axis=1)]
    frame["top_prob"] = probs.max(axis=1)
    write_csv(out, frame)
    return f"{len(frame)} images -> {out}"


def write_records(classified: Classified, out: Path, options: OutputOptions) -> str:
    """records.csv (independent events), record_counts.csv (site, class: events and untimed
    images), site_by_class.csv and activity_by_site.png, in folder `out`."""
    import matplotlib

    matplotlib.use("Agg")
    from kaggle_style.outputs.records import count_table, independent_events, records, site_by_class
    from kaggle_style.report.activity import site_activity_plot

    events = independent_events(
        records(classified, options.thresholds), options.minutes, options.compared_to
    )
    counts = count_table(events)
    tables = (events, counts, site_by_class(counts, classified.classes))
    for name, frame in zip(RECORD_FILES, tables, strict=True):
        write_csv(out / name, frame, index=name == "site_by_class.csv", float_format="%.6g")
    figure = site_activity_plot(events, out, classes=classified.classes)
    untimed = int(counts["untimed_images"].sum()) if len(counts) else 0
    if untimed:
        print(
            f"predict: {untimed} record(s) have no readable clock: counted apart "
            "(record_counts.csv, untimed_images)",
            file=sys.stderr,
        )
    return (
        f"records {out}: {int(events['timed'].sum())} independent events "
        f"({options.minutes:g} min) at {events['site'].nunique()} site(s)"
        + ("" if figure else "; no timed event, no activity figure")
    )


def check_format_for_task(fmt: str, task: Task | None) -> None:
    """The field formats (Camtrap DP, MegaDetector results, records) name taxa and count
    animals: only a task with a camera_trap part has them."""
    if task is not None and fmt != "csv" and not task.camera_trap_parts:
        raise UserError(
            f"--format {fmt}: task {task.name} has no camera_trap part (taxonomy, blank class), "
            "which this format needs; use --format csv"
        )


def predict_to(
    images: Path,
    run_dir: Path,
    out: Path,
    options: OutputOptions,
    site_from_folder: bool = False,
    detector: DetectorChoice | None = None,
    work: Path | None = None,
    progress: bool = True,
    read_meta: bool = True,
    task: Task | None = None,
) -> pd.DataFrame:
    """`predict`: classify a folder of images and write `out` in the chosen format, with
    bad_images.csv beside a file or inside a folder; return the per-image table. A refused
    prediction (no readable image, a bad run) leaves nothing, the work folder it made included."""
    from kaggle_style.deployment import predict_images, run_predict, write_bad_images

    out = Path(out)
    work = Path(work) if work else out.parent / f".{out.name}_work"
    made_work = not work.exists()
    check_format_for_task(options.fmt, task)
    try:
        if options.fmt == "csv":
            return run_predict(
                images, run_dir, out, site_from_folder, detector, work, progress, read_meta, task
            )
        found = predict_images(
            images,
            run_dir,
            site_from_folder,
            detector,
            work,
            progress,
            read_meta,
            boxes=options.needs_boxes(),
            require_boxes=options.fmt == "md",
            task=task,
        )
    except UserError:
        if made_work:
            shutil.rmtree(work, ignore_errors=True)
        raise
    done = write_output(found.classified, out, options)
    write_bad_images(found.bad, out if options.fmt in ("camtrap-dp", "records") else out.parent)
    print(f"predict: {done}", file=sys.stderr)
    return found.table


def export_run(
    run_dir: Path,
    data: Path,
    out: Path,
    options: OutputOptions,
    meta: Path | None = None,
    detections: Path | None = None,
    task: Task | None = None,
) -> str:
    """A run's competition test set in the chosen format."""
    from kaggle_style.outputs.from_run import classified_from_run
    from kaggle_style.run_contract import check_run_task

    inputs: dict[str, str | os.PathLike[Any] | None] = {
        "--run": run_dir,
        "--data": data,
        "--meta": meta,
        "--detections": detections,
    }
    check_outputs({"--out": out}, inputs)
    check_format_for_task(options.fmt, task)
    if task is not None:
        check_run_task(run_dir, task)
    classified = classified_from_run(run_dir, data, meta, detections, task)
    return write_output(classified, out, options)
