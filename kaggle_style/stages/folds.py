"""`kaggle-style folds`: site-grouped, class-stratified folds -> folds/folds.csv."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from kaggle_style.config import config_dict
from kaggle_style.config_flags import add_config_arguments, add_config_flags, config_from_args
from kaggle_style.constants import SITE_COL
from kaggle_style.data.folds import FoldsConfig, fold_table, make_folds
from kaggle_style.data.tables import load_competition_data
from kaggle_style.files import check_outputs, git_commit, write_csv, write_yaml
from kaggle_style.stages import Command
from kaggle_style.task import load_task, task_record_path, write_task


def arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    add_config_flags(parser, FoldsConfig)


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(FoldsConfig, args)
    out = Path(cfg.out)
    check_outputs({"out": cfg.out}, {"data": cfg.data})
    record = task_record_path(out)
    check_outputs({"task record": record}, {"data": cfg.data})
    task = load_task(cfg.task, folds=out)
    competition = load_competition_data(cfg.data, task, allow_outside_data=cfg.allow_outside_data)
    group_by = cfg.group_by
    group = task.group_column or "site"
    if task.group_column is None and group_by != "none":
        print(
            f"warning: task {task.name} has no group_column: stratified folds, whose estimate "
            "assumes the test images come from the training groups",
            flush=True,
        )
        group_by = "none"
    folds = make_folds(competition.train, cfg.n_splits, cfg.seed, group_by)
    write_csv(out, folds)
    write_task(record, task)
    write_yaml(
        out.with_suffix(".config.yaml"),
        {**config_dict(cfg), **task.record(), "git_commit": git_commit()},
    )
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(fold_table(folds, task.classes).to_string())
    grouped = f"grouped by {group}" if group_by != "none" else "stratified, not grouped"
    print(
        f"wrote {out} ({len(folds)} images, {folds[SITE_COL].nunique()} {group}s, "
        f"{cfg.n_splits} folds {grouped}; task {task.name})"
    )
    return 0


COMMANDS = {"folds": Command(arguments, run)}
