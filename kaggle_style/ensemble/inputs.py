"""Everything the ensemble reads: each run's oof.csv and test.csv, labels, sites, meta.csv and
detections; and an ensemble's own folder, whose members every reader checks are unchanged."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from kaggle_style.constants import (
    CONFIG_FILE,
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
from kaggle_style.ensemble.base import EnsembleError, Inputs, Meta, RowFacts, facts_of
from kaggle_style.ensemble.detections import boxes_of
from kaggle_style.ensemble.schema import RERUN, EnsembleReport, read_report
from kaggle_style.errors import few_ids
from kaggle_style.prediction_files import (
    PredictionError,
    align,
    classes_of,
    probs_of,
    read_predictions,
)
from kaggle_style.run_contract import check_run, check_run_task, fold_dirs, read_done
from kaggle_style.task import DEFAULT_FOLDS, Task, load_task

if TYPE_CHECKING:
    from kaggle_style.ensemble.config import EnsembleConfig

# meta.csv columns the second stage reads (the contract: kaggle_style.data.meta_file.META_COLUMNS).
META_DATETIME, META_HOUR, META_NIGHT = "datetime", "hour", "night"


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
    assert cfg.detections is not None  # called only when it is set
    path = Path(cfg.detections)
    task = inputs.task or load_task(cfg.task, folds=DEFAULT_FOLDS)
    tables = (cfg.train_features_path(task), cfg.test_features_path(task))
    if not all(t is not None and t.is_file() for t in tables):
        inputs.detections_note = (
            "no site table to find each id's file in the detections (set train_features / features)"
        )
        return
    files: dict[str, str] = {}
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
        return replace(facts_of(sites, None), boxes=boxes)
    frame = meta.set_index(meta[ID_COL].astype(str))
    rows = facts_of(sites, _meta_for(Path(where), frame, np.asarray(ids, dtype=str), "image"))
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
    text = rows[META_DATETIME].astype("string").str.strip().replace({"": pd.NA})
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


# ---------------------------------------------------------------- an ensemble's own folder
# The ensemble records each member run's model hash; a member retrained under another config
# since then would be blended with weights and a temperature fitted for the old model, so
# `predict`, `report`, `submit` and a re-blend refuse it. The run contract itself (one config
# per run, done marks) is `check_run`'s; these are the ensemble's callers of it.


def checked_hash(folder: Path, models: bool = False) -> str | None:
    """A run checked by the run contract (with `models`, its model files too), and the model
    hash its folds were trained under (None for a folder without folds, e.g. an ensemble)."""
    check_run(folder, models=models)  # nothing to check in a folder without folds
    folds = fold_dirs(folder)
    mark = read_done(folds[0]) if folds else None
    return None if mark is None else str(mark["model_hash"])


def _find(run_dir: Path, name: str, path: str) -> Path | None:
    """A member as recorded (relative to where `ensemble` ran), else beside the ensemble."""
    candidates = [Path(path), run_dir.parent / Path(path).name, run_dir.parent / name]
    return next((p for p in candidates if (p / CONFIG_FILE).is_file()), None)


def read_ensemble(
    run_dir: Path, need_members: bool = False
) -> tuple[EnsembleReport, list[Path | None]]:
    """(the folder's ensemble.json, each member's folder): refused in one line when a member was
    retrained under another config after the ensemble was built. A member that is not found is
    an error only when `need_members` (predict needs its models; report and submit do not)."""
    ens_file = run_dir / ENSEMBLE_FILE
    report = read_report(ens_file)
    members = report.members or {}
    folders: list[Path | None] = []
    for name, path in report.runs.items():
        found = _find(run_dir, name, path)
        if found is None and need_members:
            raise EnsembleError(
                f"{ens_file}: member run {name!r} ({path}) not found; run "
                "predict where `ensemble` ran, or beside the member runs"
            )
        folders.append(found)
        if found is None:
            continue
        now = checked_hash(found, models=need_members)
        built = members[name].model_hash if name in members else None
        if built is not None and now != built:
            raise EnsembleError(
                f"{ens_file}: member {name!r} ({found}) was retrained under "
                f"config {now} after this ensemble blended {built}; {RERUN}"
            )
    return report, folders


def member_folders(run_dir: Path) -> tuple[list[Path], EnsembleReport]:
    """(each member's run folder, the report), for `predict`."""
    report, folders = read_ensemble(run_dir, need_members=True)
    return [f for f in folders if f is not None], report


def check_ensemble_folder(folder: Path) -> None:
    """For readers of an ensemble's files (submit): refuse one whose member changed."""
    if (folder / ENSEMBLE_FILE).is_file():
        read_ensemble(folder)
