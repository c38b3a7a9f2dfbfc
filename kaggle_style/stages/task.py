"""`kaggle-style task infer DATA --out configs/tasks/NAME.yaml`: a competition's task file from
its data folder; `kaggle-style task demo NAME`: an embedded demo of another layout, end to end;
`kaggle-style task show NAME --field F`: one fact of a task, for the Makefile's rules."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Literal

from kaggle_style.config import stage_config
from kaggle_style.config_flags import add_config_flags, config_from_args
from kaggle_style.errors import UserError
from kaggle_style.files import check_outputs
from kaggle_style.stages import Command
from kaggle_style.stages.task_demo import TaskDemoConfig, run_demo
from kaggle_style.task import Task, load_task, parse_task, write_task
from kaggle_style.task_infer import infer_task

TASKS_DIR = Path("configs") / "tasks"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


@stage_config
class TaskInferConfig:
    """`task infer`: where the inferred task file goes."""

    out: str | None = None
    """infer: task file to write (default configs/tasks/<data folder's name>.yaml)"""
    force: bool = False
    """infer: replace an existing task file"""


@stage_config
class TaskShowConfig:
    """`task show`: which fact of the task to print."""

    field: Literal["name", "tables", "format", "camera-trap"] | None = None
    """show: print only this fact (tables: the task's table files; camera-trap: yes or no)"""


ACTIONS = ("infer", "demo", "show")


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        choices=ACTIONS,
        help="infer: write a task file; demo: run a demo; show: print a task's facts",
    )
    parser.add_argument(
        "target",
        help="infer: the competition's data folder; demo: the demo's name (boreal); show: a "
        "task file or name",
    )
    add_config_flags(parser, TaskInferConfig)
    add_config_flags(parser, TaskDemoConfig)
    add_config_flags(parser, TaskShowConfig)


def run(args: argparse.Namespace) -> int:
    if args.action == "demo":
        return run_demo(args.target, config_from_args(TaskDemoConfig, args))
    if args.action == "show":
        return run_show(load_task(args.target), config_from_args(TaskShowConfig, args))
    return run_infer(args.target, config_from_args(TaskInferConfig, args))


def run_infer(data_folder: str, cfg: TaskInferConfig) -> int:
    data = Path(data_folder)
    out = Path(cfg.out) if cfg.out else TASKS_DIR / f"{_name_of(data.resolve().name)}.yaml"
    name = _name_of(out.stem)
    if out.suffix not in (".yaml", ".yml"):
        raise UserError(f"--out {out}: a task file is YAML; name it {out.stem}.yaml")
    if out.exists() and not cfg.force:
        raise UserError(f"--out {out}: exists; add --force to replace it, or choose another name")
    check_outputs({"out": out}, {"data": data})
    inference = infer_task(data, name)
    task = parse_task(inference.task, str(out))  # the written file must load: checked first
    print(f"inferred from {data}:")
    for line in inference.found:
        print(f"  {line}")
    if inference.undecided:
        print("not decided from the data (defaults written; set the key to change them):")
        for line in inference.undecided:
            print(f"  {line}")
    write_task(out, task)
    print(f"wrote {out}; check it with `kaggle-style check-data {data} --task {out}`")
    return 0


def task_facts(task: Task) -> dict[str, str]:
    """What the Makefile's rules need of a task: its tables (the prerequisites of `folds`), the
    submission format (`submit`) and whether the camera-trap stages (meta, detections) apply."""
    tables = task.tables
    files = [tables.train, tables.labels, tables.test, tables.submission_format]
    return {
        "name": task.name,
        "tables": " ".join(dict.fromkeys(f for f in files if f is not None)),
        "format": tables.submission_format,
        "camera-trap": "yes" if task.camera_trap_parts else "no",
    }


def run_show(task: Task, cfg: TaskShowConfig) -> int:
    facts = task_facts(task)
    if cfg.field is not None:
        print(facts[cfg.field])
    else:
        for key, value in facts.items():
            print(f"{key}: {value}")
    return 0


def _name_of(stem: str) -> str:
    """A task's name is its file's stem: letters, digits, `-` and `_`."""
    if not NAME_PATTERN.match(stem):
        raise UserError(
            f"task name {stem!r}: use letters, digits, '-' and '_' (the task file's stem is its "
            "name); pass --out configs/tasks/NAME.yaml"
        )
    return stem


COMMANDS = {"task": Command(arguments, run)}
