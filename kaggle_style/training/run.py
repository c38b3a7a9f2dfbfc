"""A training run: every fold (skipping finished ones), then the run's combined files.

Under `accelerate launch` every process runs this; the main process alone writes files and takes
locks, the image cache is built once while the others wait, and every process trains each fold.
Several boxes on one filesystem share a run: each takes the next fold nobody holds, and whoever
finishes the last fold writes `oof.csv`, `test.csv` and `metrics.json`.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from kaggle_style.config import config_dict, plain
from kaggle_style.constants import (
    CONFIG_FILE,
    FOLD_COL,
    ID_COL,
    METRICS_FILE,
    OOF_FILE,
    TEST_FILE,
)
from kaggle_style.errors import UserError
from kaggle_style.files import check_outputs, git_commit, read_csv, write_json, write_yaml
from kaggle_style.metrics import format_summary, score
from kaggle_style.prediction_files import write_predictions
from kaggle_style.run_contract import DONE_FILE, read_done, remove_combined
from kaggle_style.training.config import TrainConfig, model_hash
from kaggle_style.training.data import FoldInputs, prepare_data
from kaggle_style.training.fold_locks import FoldLock, live_locks
from kaggle_style.training.loop import EpochCallback, FoldResult, make_accelerator, train_fold
from kaggle_style.training.pseudo_labels import (
    FOLDS_HASH_KEY,
    check_sources,
    check_targets,
    file_sha256,
)

if TYPE_CHECKING:
    from accelerate import Accelerator

__all__ = ["EpochCallback", "run_training"]


def run_training(cfg: TrainConfig, on_epoch_end: EpochCallback | None = None) -> dict[str, Any]:
    """Train the configured folds and, when every fold of the folds file is done under this
    config, write the run's oof.csv, test.csv and metrics.json."""
    started = time.time()
    run_dir = cfg.run_dir
    check_outputs({"runs_dir": run_dir}, {"data": cfg.data, "folds_file": cfg.folds_file})
    accelerator = make_accelerator(cfg)
    main = accelerator.is_main_process
    if cfg.pseudo_labels is not None:  # refused before the hash reads the source's files
        check_sources(cfg.pseudo_labels, cfg.runs_dir, run_dir, cfg.folds_file)
    key = model_hash(cfg)
    if main:
        _refuse_other_config(run_dir, key)
    with accelerator.main_process_first():  # the cache is decoded once; the others then read it
        prep = prepare_data(cfg)
    all_folds = sorted(prep.folds[FOLD_COL].astype(int).unique().tolist())
    wanted = cfg.folds if cfg.folds is not None else all_folds
    unknown = sorted(set(wanted) - set(all_folds))
    if unknown:
        raise UserError(
            f"fold(s) {unknown} not in {cfg.folds_file} (folds: {all_folds}); "
            "use --fold with one of those"
        )
    check_readable_folds(prep, wanted)
    if cfg.pseudo_labels is not None:
        check_targets(cfg.pseudo_labels, cfg.runs_dir, wanted, list(prep.test_samples.ids))
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_yaml(
            run_dir / CONFIG_FILE,
            {
                **config_dict(cfg),
                **prep.competition.task.record(),
                "git_commit": git_commit(),
                "model_hash": key,
                "data_config": plain(prep.data_cfg),
                FOLDS_HASH_KEY: file_sha256(cfg.folds_file),
            },
        )
    for fold in wanted:
        fold_dir = run_dir / f"fold{fold}"
        if read_done(fold_dir, key) is not None:
            accelerator.print(f"{cfg.name} fold {fold}: up to date ({fold_dir / DONE_FILE})")
            continue
        lock = FoldLock(fold_dir, key)
        if not _everyone_agrees(accelerator, lock.acquire() if main else False):
            accelerator.print(
                f"{cfg.name} fold {fold}: being trained by {lock.describe()} ({lock.path}); skipped"
            )
            continue
        try:
            if main:
                remove_combined(run_dir)
                (fold_dir / DONE_FILE).unlink(missing_ok=True)
            result = train_fold(prep, fold, accelerator, on_epoch_end)
            if main:
                _write_fold(prep, fold_dir, result, key)
            accelerator.free_memory()
        finally:
            lock.release()
    accelerator.wait_for_everyone()
    return _finish(prep, all_folds, wanted, key, started, main)


def check_readable_folds(prep: FoldInputs, wanted: list[int]) -> None:
    """Each fold to train has readable images to learn from and to score on: a fold whose
    images are all unreadable would train on nothing or score nothing, so nothing is written."""
    cache, ids = prep.train_cache, prep.train_samples.ids
    listed = f"listed in {cache.folder}/bad_images.csv"
    if not np.asarray(cache.ok).any():
        first = next(iter(cache.errors.values()), "unreadable")
        raise UserError(
            f"none of the {len(ids)} training images can be read (e.g. {first}); nothing "
            f"trained: replace them and rerun ({listed})"
        )
    sample_fold = np.array([prep.fold_of[i] for i in ids])
    for fold in wanted:
        for what, rows in (("training", sample_fold != fold), ("validation", sample_fold == fold)):
            if not (rows & np.asarray(cache.ok)).any():
                raise UserError(
                    f"fold {fold} has no readable {what} image ({int(rows.sum())} unreadable, "
                    f"{listed}); nothing trained: replace them or rebuild the folds"
                )


def _refuse_other_config(run_dir: Path, key: str) -> None:
    """Two configs never train into one run folder at the same time."""
    others = [h for h in live_locks(run_dir) if h.get("model_hash") != key]
    if others:
        h = others[0]
        raise UserError(
            f"run {run_dir} is being trained under another config by "
            f"{h.get('host')}:{h.get('pid')}; wait for it, or use another --name"
        )


def _everyone_agrees(accelerator: Accelerator, flag: bool) -> bool:
    """The main process's decision, sent to every process of a distributed launch."""
    if accelerator.num_processes == 1:
        return flag
    from accelerate.utils import broadcast_object_list

    return bool(broadcast_object_list([flag])[0])


def _write_fold(prep: FoldInputs, fold_dir: Path, result: FoldResult, key: str) -> None:
    write_predictions(fold_dir / OOF_FILE, result.oof)
    if result.test is not None:
        write_predictions(fold_dir / TEST_FILE, result.test)
    scores = _score_frame(prep, result.oof)
    write_json(
        fold_dir / DONE_FILE,
        {
            "model_hash": key,
            "history": result.history,
            "last_lr": result.last_lr,
            "scores": scores,
            "batch_fit": result.batch_fit,
        },
    )
    # the fold's final weights are in model.safetensors; resumable state is no longer needed
    shutil.rmtree(fold_dir / "checkpoints", ignore_errors=True)
    print(format_summary(f"{prep.cfg.name} fold {result.fold}", scores))


def _finish(
    prep: FoldInputs, all_folds: list[int], wanted: list[int], key: str, started: float, main: bool
) -> dict[str, Any]:
    run_dir = prep.cfg.run_dir
    marks = {f: read_done(run_dir / f"fold{f}", key) for f in all_folds}
    summary: dict[str, Any] = {
        "folds": {str(f): m for f, m in marks.items() if f in wanted and m is not None},
        "model_hash": key,
        "seconds": round(time.time() - started, 1),
    }
    finished = [f for f, m in marks.items() if m is not None]
    if finished == all_folds:
        overall = _combine(prep, all_folds, run_dir) if main else {}
        summary["overall"] = overall
        if main:
            print(format_summary(f"{prep.cfg.name} OOF", overall))
    elif main:
        print(
            f"{len(finished)} of {len(all_folds)} folds done; oof.csv and test.csv are written "
            "when every fold is"
        )
    trained = [f for f in wanted if marks[f] is not None]
    summary["trained_folds"] = trained
    if trained:
        subset = pd.concat([_read_fold(run_dir / f"fold{f}" / OOF_FILE) for f in trained])
        summary["trained_folds_log_loss"] = _score_frame(prep, subset)["log_loss"]
    return summary


def _combine(prep: FoldInputs, folds: list[int], run_dir: Path) -> dict[str, Any]:
    oof = pd.concat([_read_fold(run_dir / f"fold{f}" / OOF_FILE) for f in folds])
    oof = oof.set_index(ID_COL).loc[prep.folds[ID_COL]].reset_index()
    write_predictions(run_dir / OOF_FILE, oof)
    if prep.test_cache is not None:
        tests = [_read_fold(run_dir / f"fold{f}" / TEST_FILE).set_index(ID_COL) for f in folds]
        total = sum(t[list(prep.classes)] for t in tests)
        assert isinstance(total, pd.DataFrame)  # (a run has at least one fold)
        test = total / len(tests)
        test = test.div(test.sum(axis=1), axis=0).loc[prep.competition.test[ID_COL]].reset_index()
        write_predictions(run_dir / TEST_FILE, test)
    overall = _score_frame(prep, oof)
    per_fold = {str(f): _score_frame(prep, oof[oof[FOLD_COL] == f]) for f in folds}
    write_json(
        run_dir / METRICS_FILE,
        {"overall": overall, "per_fold": per_fold, "git_commit": git_commit()},
    )
    return overall


def _read_fold(path: Path) -> pd.DataFrame:
    return read_csv(path)


def _score_frame(prep: FoldInputs, frame: pd.DataFrame) -> dict[str, Any]:
    y = np.array([prep.label_of[i] for i in frame[ID_COL]])
    task = prep.competition.task
    return score(y, frame[list(prep.classes)].to_numpy(), task.classes, task.score_metric)
