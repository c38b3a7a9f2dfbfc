"""`kaggle-style task infer DATA --out configs/tasks/NAME.yaml`: a competition's task file from
its data folder; `kaggle-style task demo NAME`: an embedded demo of another layout, end to end."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from kaggle_style.errors import UserError
from kaggle_style.files import check_outputs
from kaggle_style.task import parse_task, write_task
from kaggle_style.task_infer import infer_task

TASKS_DIR = Path("configs") / "tasks"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    infer = actions.add_parser(
        "infer", help="write a task file inferred from a data folder (either layout)"
    )
    infer.add_argument("data", help="the competition's data folder")
    infer.add_argument(
        "--out", help="task file to write (default configs/tasks/<data folder's name>.yaml)"
    )
    infer.add_argument("--force", action="store_true", help="replace an existing task file")
    demo = actions.add_parser(
        "demo", help="generate an embedded demo and run folds, train, ensemble, submit, report"
    )
    from kaggle_style.stages.task_demo import add_demo_arguments

    add_demo_arguments(demo)


def run(args: argparse.Namespace) -> int:
    if args.action == "demo":
        from kaggle_style.stages.task_demo import run_demo

        return run_demo(args)
    data = Path(args.data)
    out = Path(args.out) if args.out else TASKS_DIR / f"{_name_of(data.resolve().name)}.yaml"
    name = _name_of(out.stem)
    if out.suffix not in (".yaml", ".yml"):
        raise UserError(f"--out {out}: a task file is YAML; name it {out.stem}.yaml")
    if out.exists() and not args.force:
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


def _name_of(stem: str) -> str:
    """A task's name is its file's stem: letters, digits, `-` and `_`."""
    if not NAME_PATTERN.match(stem):
        raise UserError(
            f"task name {stem!r}: use letters, digits, '-' and '_' (the task file's stem is its "
            "name); pass --out configs/tasks/NAME.yaml"
        )
    return stem
