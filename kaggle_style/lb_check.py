"""Play the leaderboard locally: hold out whole sites as a pseudo-test set, train on the rest
with the usual site-grouped folds, and compare the local OOF estimate with the held-out score.

A local estimate well below the pseudo-leaderboard means the validation is optimistic.

The run then goes through the ensemble stage twice, with site adaptation off and on, and both
pseudo-test files are scored: held-out sites are the one place where the post-processing that was
fitted on OOF rows meets sites no label of which chose anything.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from kaggle_style.config import config_dict, resolve_config
from kaggle_style.constants import FILEPATH_COL, ID_COL, LABEL_COL, SITE_COL, TEST_FILE
from kaggle_style.data.folds import make_folds
from kaggle_style.data.tables import load_competition_data
from kaggle_style.ensemble.run import EnsembleConfig, ensemble
from kaggle_style.errors import UserError
from kaggle_style.files import check_outputs, write_csv, write_json
from kaggle_style.metrics import score
from kaggle_style.task import (
    Images,
    Labels,
    Submission,
    Task,
    conservision,
    load_task,
    task_record_path,
    write_task,
)
from kaggle_style.training.config import TrainConfig
from kaggle_style.training.run import run_training

RUN_NAME = "lb-check"  # the run folder under WORK/runs


def pseudo_split(train: pd.DataFrame, share: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(kept, held-out) with about `share` of the images in held-out sites."""
    rng = np.random.default_rng(seed)
    sizes = train.groupby(SITE_COL).size()
    order = rng.permutation(sizes.index.to_numpy())
    held, total = [], 0
    for site in order:
        if total >= share * len(train):
            break
        held.append(site)
        total += sizes[site]
    mask = train[SITE_COL].isin(held)
    if not held or mask.all():  # one side empty: nothing to train on, or nothing to score
        raise UserError(
            f"--share {share:g} holds out {len(held)} of the {len(sizes)} sites, leaving "
            f"{'no test' if not held else 'no training'} image; give a share between 0 and 1 "
            "that splits the sites"
        )
    return train[~mask].reset_index(drop=True), train[mask].reset_index(drop=True)


def clear_work(work: Path, data: Path) -> None:
    """Remove the previous check's runs from `work`, refusing a folder that is not one of
    lb-check's (`--work .` would otherwise remove the user's own runs/)."""
    check_outputs({"--work": work}, {"--data": data})
    runs = work / "runs"
    others = sorted(p.name for p in runs.iterdir() if p.name != RUN_NAME) if runs.is_dir() else []
    if others:
        raise UserError(
            f"--work {work}: its runs/ holds {', '.join(others[:3])}, not only lb-check's "
            f"{RUN_NAME}; give a folder of its own as --work"
        )
    shutil.rmtree(runs, ignore_errors=True)


def pseudo_task(task: Task) -> Task:
    """The task of the pseudo folder: its name and classes, in the project's own layout
    (DrivenData's four tables, as Conser-vision's)."""
    return task.model_copy(
        update={
            "tables": conservision().tables,
            "id_column": ID_COL,
            "images": Images(column=FILEPATH_COL),
            "labels": Labels(kind="onehot"),
            "group_column": SITE_COL,
            "submission": Submission(kind="probabilities"),
            "metric": task.metric if task.metric != "log_loss" else None,
        }
    )


def write_pseudo_dataset(
    data: Path, out: Path, share: float, seed: int, task: Task | None = None
) -> Path:
    """A folder in the project's own layout (DrivenData's four tables) whose test set is the
    held-out sites (image folders are linked, not copied)."""
    dataset = load_competition_data(data, task)
    classes = list(dataset.classes)
    kept, held = pseudo_split(dataset.train, share, seed)
    out.mkdir(parents=True, exist_ok=True)
    tables = pseudo_task(dataset.task).tables
    for frame, name in ((kept, tables.train), (held, str(tables.test))):
        write_csv(out / name, frame[[ID_COL, FILEPATH_COL, SITE_COL]])
    labels = pd.get_dummies(kept[LABEL_COL]).reindex(columns=classes, fill_value=0)
    write_csv(out / str(tables.labels), pd.concat([kept[[ID_COL]], labels.astype(float)], axis=1))
    fmt = pd.DataFrame({ID_COL: held[ID_COL], **{c: 1 / len(classes) for c in classes}})
    write_csv(out / tables.submission_format, fmt)
    write_csv(out / "held_out_labels.csv", held[[ID_COL, SITE_COL, LABEL_COL]])
    paths = dataset.train[FILEPATH_COL].astype(str)
    for folder in sorted({p.split("/")[0] for p in paths if "/" in p}):
        link = out / folder
        if not link.exists() and (data / folder).exists():
            link.symlink_to((data / folder).resolve())
    return out


def lb_check(cfg: TrainConfig, share: float, n_splits: int, seed: int, work: Path) -> dict:
    task = load_task(cfg.task, folds=cfg.folds_file)
    data = write_pseudo_dataset(Path(cfg.data), work / "data", share, seed, task)
    held_task = pseudo_task(task)
    dataset = load_competition_data(data, held_task)
    folds = work / "folds.csv"
    write_csv(folds, make_folds(dataset.train, n_splits, seed))
    write_task(task_record_path(folds), held_task)
    run_cfg = resolve_config(
        TrainConfig,
        overrides={
            **config_dict(cfg),
            "data": str(data),
            "folds_file": str(folds),
            "runs_dir": str(work / "runs"),
            "name": RUN_NAME,
            "folds": None,
            "task": None,  # the pseudo folder's, recorded beside its folds
        },
    )
    summary = run_training(run_cfg)
    held = pd.read_csv(data / "held_out_labels.csv", dtype={ID_COL: str})
    y = held[LABEL_COL].map(task.class_index).to_numpy()

    def pseudo_lb(test_file: Path) -> float:
        test = pd.read_csv(test_file, dtype={ID_COL: str}).set_index(ID_COL)
        probs = test.loc[held[ID_COL], list(task.classes)].to_numpy()
        return score(y, probs, task.classes)["log_loss"]

    pseudo = pseudo_lb(run_cfg.run_dir / TEST_FILE)
    result = {
        "local_oof_log_loss": summary["overall"]["log_loss"],
        "pseudo_lb_log_loss": pseudo,
        "gap": pseudo - summary["overall"]["log_loss"],
        "held_out_sites": int(held[SITE_COL].nunique()),
        "held_out_images": len(held),
    }
    for mode in ("off", "on"):
        out = work / f"ensemble_site_{mode}"
        report = ensemble(
            EnsembleConfig(
                runs=[str(run_cfg.run_dir)],
                data=str(data),
                out=str(out),
                site_adapt=mode,
                stacking=False,
                task=str(task_record_path(folds)),
            )
        ).report
        result[f"pseudo_lb_log_loss_site_{mode}"] = pseudo_lb(out / TEST_FILE)
        if mode == "on":
            record = report.step("site_adapt")
            nested = (record.nested if record is not None else None) or {}
            result["site_adapt_nested_oof"] = [nested.get("before"), nested.get("after")]
    write_json(work / "lb_check.json", result)
    return result
