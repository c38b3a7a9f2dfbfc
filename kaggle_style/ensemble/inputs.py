"""Everything the ensemble reads: each run's oof.csv and test.csv, labels, sites and meta.csv."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from kaggle_style.constants import (
    ENSEMBLE_FILE,
    FILEPATH_COL,
    FOLD_COL,
    ID_COL,
    LABEL_COL,
    OOF_FILE,
    SITE_COL,
    TEST_FILE,
)
from kaggle_style.data.meta_file import MetaError, read_meta
from kaggle_style.data.tables import read_features, read_labels
from kaggle_style.detect.mdjson import read as read_detections
from kaggle_style.ensemble.chain import RowFacts
from kaggle_style.ensemble.config import EnsembleError
from kaggle_style.ensemble.detections import boxes_of
from kaggle_style.ensemble.members import checked_hash, read_ensemble
from kaggle_style.errors import few_ids
from kaggle_style.prediction_files import (
    PredictionError,
    align,
    classes_of,
    probs_of,
    read_predictions,
)
from kaggle_style.run_contract import check_run_task
from kaggle_style.task import DEFAULT_FOLDS, Task, load_task

if TYPE_CHECKING:
    from kaggle_style.ensemble.config import EnsembleConfig

# meta.csv columns the second stage reads (the contract: kaggle_style.data.meta_file.META_COLUMNS).
META_DATETIME, META_HOUR, META_NIGHT = "datetime", "hour", "night"


@dataclass
class Meta:
    """Info-bar readings of some ids; NaN where the bar could not be read."""

    times: np.ndarray  # seconds since 1970 (camera clock), float
    hours: np.ndarray  # 0-24
    night: np.ndarray  # 1/0

    def take(self, mask: np.ndarray) -> Meta:
        return Meta(self.times[mask], self.hours[mask], self.night[mask])


@dataclass
class Inputs:
    """Aligned OOF and test probabilities of every run, with labels, folds and (maybe) sites."""

    names: list[str]
    oof_ids: np.ndarray
    test_ids: np.ndarray
    oof: list[np.ndarray]
    test: list[np.ndarray]
    y: np.ndarray
    folds: np.ndarray
    oof_sites: np.ndarray | None = None
    test_sites: np.ndarray | None = None
    site_note: str = ""  # why there are no sites
    oof_meta: Meta | None = None
    test_meta: Meta | None = None
    meta_note: str = ""  # why there is no meta
    hashes: list[str | None] | None = None  # each run's model hash (None: not a model run)
    oof_boxes: np.ndarray | None = None  # per row, its detector boxes (see detections.py)
    test_boxes: np.ndarray | None = None
    detections_note: str = "no detections file (give --detections)"
    task: Task | None = None  # the competition: classes (prediction columns), metric, layout

    @property
    def classes(self) -> tuple[str, ...]:
        return self.task.classes if self.task is not None else ()

    def rows(self) -> RowFacts:
        return replace(
            _rows(self.oof_sites, self.oof_meta, self.y, self.folds),
            members=np.stack(self.oof, axis=1),
            boxes=self.oof_boxes,
        )

    def test_rows(self) -> RowFacts:
        return replace(
            _rows(self.test_sites, self.test_meta),
            members=np.stack(self.test, axis=1),
            boxes=self.test_boxes,
        )

    def hold_out(self, fold: int) -> Inputs:
        """The other folds as OOF rows and this fold's rows as unlabelled test rows: what the
        whole second stage, its choices included, may see when it predicts this fold."""
        held = self.folds == fold
        keep = ~held

        def part(values, mask):
            return None if values is None else values[mask]

        return replace(
            self,
            oof_ids=self.oof_ids[keep],
            test_ids=self.oof_ids[held],
            oof=[p[keep] for p in self.oof],
            test=[p[held] for p in self.oof],
            y=self.y[keep],
            folds=self.folds[keep],
            oof_sites=part(self.oof_sites, keep),
            test_sites=part(self.oof_sites, held),
            oof_meta=None if self.oof_meta is None else self.oof_meta.take(keep),
            test_meta=None if self.oof_meta is None else self.oof_meta.take(held),
            oof_boxes=part(self.oof_boxes, keep),
            test_boxes=part(self.oof_boxes, held),
        )


def _rows(
    sites: np.ndarray | None,
    meta: Meta | None,
    y: np.ndarray | None = None,
    folds: np.ndarray | None = None,
) -> RowFacts:
    if meta is None:
        return RowFacts(y=y, folds=folds, sites=sites)
    return RowFacts(
        y=y, folds=folds, sites=sites, times=meta.times, hours=meta.hours, night=meta.night
    )


def _run_names(runs: Sequence[str]) -> list[str]:
    names = [Path(r).name or str(r) for r in runs]
    return names if len(set(names)) == len(names) else [str(r) for r in runs]


def _site_table(path: Path | None, task: Task, split: str) -> pd.DataFrame | None:
    """`id, filepath, site` of a split's table; None for a test set known only by the
    submission format (its images then form groups of one: no test id shares a site)."""
    if path is None:
        return None
    return read_features(path, task, split)


def _sites_for(path: Path | None, ids: np.ndarray, what: str, task: Task, split: str) -> np.ndarray:
    frame = _site_table(path, task, split)
    if frame is None:
        return np.asarray(ids, dtype=str)
    table = frame.set_index(ID_COL)[SITE_COL]
    missing = [i for i in ids if i not in table.index]
    if missing:
        raise EnsembleError(
            f"{path}: no site for {len(missing)} {what} id(s): "
            f"{few_ids(missing)}; give the site table of these runs' ids"
        )
    return table.loc[ids].to_numpy().astype(str)


def _read_run(name: str, folder: Path, task: Task) -> tuple[pd.DataFrame, pd.DataFrame, str | None]:
    """A run's OOF and test frames and model hash, after checking its folds share one config
    and that it was made for `task` (its name and class order)."""
    for file in (OOF_FILE, TEST_FILE):
        if not (folder / file).is_file():
            raise EnsembleError(
                f"run {name}: {folder / file} not found; train the run (or "
                "rerun its ensemble) first, or leave it out"
            )
    if (folder / ENSEMBLE_FILE).is_file():
        read_ensemble(folder)  # an ensemble blended again: its own members unchanged
    key = checked_hash(folder)
    check_run_task(folder, task)
    oof = read_predictions(folder / OOF_FILE, require_fold=True)
    task.check_classes(classes_of(oof), f"run {name} ({folder / OOF_FILE})")
    return (
        oof,
        read_predictions(folder / TEST_FILE, classes=task.classes),
        key,
    )


def load_inputs(
    cfg: EnsembleConfig,
    need_sites: bool,
    need_meta: bool,
    need_detections: bool = False,
    task: Task | None = None,
) -> Inputs:
    """Read every run's oof.csv and test.csv, check they line up, attach labels (and sites and
    meta, for the steps that use them)."""
    if not cfg.runs:
        raise EnsembleError("no runs to ensemble: give run folders or `runs:` in the config")
    task = task or load_task(cfg.task, folds=DEFAULT_FOLDS)
    names = _run_names(cfg.runs)
    oof_frames, test_frames, hashes = {}, {}, {}
    for name, run in zip(names, cfg.runs, strict=True):
        oof_frames[name], test_frames[name], hashes[name] = _read_run(name, Path(run), task)
    try:
        oof_frames = align(oof_frames)
    except PredictionError as err:
        raise EnsembleError(f"OOF files ({OOF_FILE}): {err}") from err
    try:
        test_frames = align(test_frames, check_folds=False)
    except PredictionError as err:
        raise EnsembleError(f"test files ({TEST_FILE}): {err}") from err
    first_oof, first_test = oof_frames[names[0]], test_frames[names[0]]
    oof_ids = first_oof[ID_COL].to_numpy().astype(str)
    labels_path = cfg.labels_path(task)
    labels = read_labels(labels_path, task=task).set_index(ID_COL)[LABEL_COL]
    unlabelled = [i for i in oof_ids if i not in labels.index]
    if unlabelled:
        raise EnsembleError(
            f"{labels_path}: no label for {len(unlabelled)} OOF id(s): "
            f"{few_ids(unlabelled)}; give the labels these runs trained on"
        )
    inputs = Inputs(
        names=names,
        oof_ids=oof_ids,
        test_ids=first_test[ID_COL].to_numpy().astype(str),
        oof=[probs_of(oof_frames[n], task.classes) for n in names],
        test=[probs_of(test_frames[n], task.classes) for n in names],
        y=labels.loc[oof_ids].map(task.class_index).to_numpy().astype(np.int64),
        folds=first_oof[FOLD_COL].to_numpy(),
        hashes=[hashes[n] for n in names],
        task=task,
    )
    if need_sites:
        _attach_sites(cfg, inputs)
    if need_meta:
        _attach_meta(cfg, inputs)
    if need_detections and cfg.detections:
        _attach_detections(cfg, inputs)
    return inputs


def boxes_for(path: Path, files: Sequence[str]) -> np.ndarray:
    """Per file (as the detections file names it), its boxes; none where the file has none."""
    found = read_detections(path).images
    out = np.empty(len(files), dtype=object)
    out[:] = [boxes_of(found.get(str(f), [])) for f in files]
    return out


def _attach_detections(cfg: EnsembleConfig, inputs: Inputs) -> None:
    """Boxes of OOF and test ids, by their file paths in the site tables."""
    path = Path(cfg.detections)  # type: ignore[arg-type]
    task = inputs.task or load_task(cfg.task, folds=DEFAULT_FOLDS)
    tables = (cfg.train_features_path(task), cfg.test_features_path(task))
    if not all(t is not None and t.is_file() for t in tables):
        inputs.detections_note = (
            "no site table to find each id's file in the detections (set train_features / features)"
        )
        return
    files = {}
    for table, split in zip(tables, ("train", "test"), strict=True):
        frame = _site_table(table, task, split)
        if frame is not None:
            files.update(frame.set_index(ID_COL)[FILEPATH_COL].astype(str))
    oof_files = [files.get(i, "") for i in inputs.oof_ids]
    known = set(read_detections(path).images)
    if not known.intersection(oof_files):
        raise EnsembleError(
            f"{path}: no detection for any OOF image (it names files like "
            f"{few_ids(sorted(known)[:2])}, the tables like "
            f"{few_ids(oof_files[:2])}); give the detections of these images"
        )
    inputs.oof_boxes = boxes_for(path, oof_files)
    inputs.test_boxes = boxes_for(path, [files.get(i, "") for i in inputs.test_ids])


def _attach_sites(cfg: EnsembleConfig, inputs: Inputs) -> None:
    """Sites of OOF and test ids; missing site tables only leave the site-based steps out."""
    task = inputs.task or load_task(cfg.task, folds=DEFAULT_FOLDS)
    if task.group_column is None and not cfg.train_features:
        inputs.site_note = f"no group column in task {task.name} (set group_column)"
        return
    train_path, test_path = cfg.train_features_path(task), cfg.test_features_path(task)
    absent = [str(p) for p in (train_path, test_path) if p is not None and not p.is_file()]
    if absent:
        inputs.site_note = (
            f"no site table ({', '.join(absent)} not found; set train_features / features)"
        )
        return
    inputs.oof_sites = _sites_for(train_path, inputs.oof_ids, "OOF", task, "train")
    inputs.test_sites = _sites_for(test_path, inputs.test_ids, "test", task, "test")


def _attach_meta(cfg: EnsembleConfig, inputs: Inputs) -> None:
    path = cfg.meta_path()
    if not path.is_file():
        inputs.meta_note = f"no meta.csv ({path} not found; run `kaggle-style meta` or set meta)"
        return
    try:
        frame = read_meta(path)
    except MetaError as err:  # the ensemble's errors are of one type
        raise EnsembleError(str(err)) from err
    duplicated = frame.loc[frame[ID_COL].duplicated(), ID_COL]
    if len(duplicated):
        raise EnsembleError(
            f"{path}: duplicate ids {few_ids(duplicated.unique())}; rerun `kaggle-style meta`"
        )
    frame = frame.set_index(ID_COL)
    inputs.oof_meta = _meta_for(path, frame, inputs.oof_ids, "OOF")
    inputs.test_meta = _meta_for(path, frame, inputs.test_ids, "test")


def new_rows(
    sites: np.ndarray | None,
    meta: pd.DataFrame | None = None,
    ids: np.ndarray | None = None,
    where: str = "meta",
    boxes: np.ndarray | None = None,
) -> RowFacts:
    """Rows of new images for `Blend.apply` (what `predict` needs): their sites, from a frame
    in the meta.csv layout with their `ids` their times, and their detector boxes."""
    if meta is None or ids is None:
        return replace(_rows(sites, None), boxes=boxes)
    frame = meta.set_index(meta[ID_COL].astype(str))
    rows = _rows(sites, _meta_for(Path(where), frame, np.asarray(ids, dtype=str), "image"))
    return replace(rows, boxes=boxes)


def _meta_for(path: Path, frame: pd.DataFrame, ids: np.ndarray, what: str) -> Meta:
    """Times, hours and night flags of `ids`; an unreadable (non-empty, invalid) value is an
    error, because an empty cell is how meta.csv says "not read"."""
    missing = [i for i in ids if i not in frame.index]
    if missing:
        raise EnsembleError(
            f"{path}: no row for {len(missing)} {what} id(s): {few_ids(missing)}; "
            "rerun `kaggle-style meta` on the data these runs used"
        )
    rows = frame.loc[ids]
    text = rows[META_DATETIME].astype("string").str.strip().replace("", pd.NA)
    stamps = pd.to_datetime(text, errors="coerce", format="ISO8601")
    hours = pd.to_numeric(rows[META_HOUR], errors="coerce").to_numpy(dtype=np.float64)
    night = pd.to_numeric(rows[META_NIGHT], errors="coerce").to_numpy(dtype=np.float64)
    checks = [
        (META_DATETIME, text.notna().to_numpy() & stamps.isna().to_numpy(), "ISO 8601"),
        (
            META_HOUR,
            rows[META_HOUR].notna().to_numpy() & ~((hours >= 0) & (hours <= 24)),
            "a number from 0 to 24",
        ),
        (META_NIGHT, rows[META_NIGHT].notna().to_numpy() & ~np.isin(night, (0.0, 1.0)), "0 or 1"),
    ]
    for column, bad, expected in checks:
        if bad.any():
            raise EnsembleError(
                f"{path}: column '{column}' is not {expected} for "
                f"{int(bad.sum())} id(s): {few_ids(ids[bad])}; leave a value "
                "empty when it could not be read"
            )
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_convert(None)
    seconds = (stamps - pd.Timestamp(0)).dt.total_seconds().to_numpy(dtype=np.float64)
    return Meta(times=seconds, hours=hours, night=night)
