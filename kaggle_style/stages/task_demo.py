"""`kaggle-style task demo NAME` (`make demo TASK=NAME`): an embedded competition of another
layout, end to end: generate its data, then folds -> train -> ensemble -> submit -> report.

Each step is the stage a user runs (its own arguments, `--task` the task file), called in this
process so the demo's time is training, not start-ups. Outputs go under OUT/runs/NAME/, never
where the Conser-vision demo's make targets look, so neither demo can take the other's files
for up to date.
"""

from __future__ import annotations

import argparse
import importlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

from pydantic import Field

from kaggle_style.config import stage_config
from kaggle_style.demo.kaggle_layout import (
    INFO_FILE,
    TRUTH_FILE,
    KaggleDemoConfig,
    describe_kaggle_demo,
    generate_kaggle_demo,
)
from kaggle_style.errors import UserError
from kaggle_style.files import read_csv

TASKS_DIR = Path("configs") / "tasks"
# The demos this command can generate, by task name: their data's generator config.
DEMOS: dict[str, Callable[[str], KaggleDemoConfig]] = {
    "boreal": lambda out: KaggleDemoConfig(out=out),
}
RECIPE = Path("configs") / "demo-full.yaml"  # full frames: no detector, no crops needed
ENSEMBLE_CONFIG = Path("configs") / "ensemble-demo.yaml"
N_SPLITS = 3


@stage_config
class TaskDemoConfig:
    """`task demo`: where the demo's data and outputs go."""

    data: str | None = None
    """demo: its data folder (default data/NAME; generated when it holds no demo)"""
    work: str = "."
    """demo: outputs go under WORK/runs/NAME, the image cache under WORK/cache/NAME"""
    threads: Annotated[int, Field(ge=1)] = 2
    """demo: torch's CPU threads"""


def run_demo(name: str, cfg: TaskDemoConfig) -> int:
    started = time.perf_counter()
    if name not in DEMOS:
        raise UserError(f"task demo {name}: no such demo; the demos are {', '.join(DEMOS)}")
    task = TASKS_DIR / f"{name}.yaml"
    if not task.is_file():
        raise UserError(f"{task}: the task file of demo {name} is missing; run from the checkout")
    data = Path(cfg.data or Path("data") / name)
    if not (data / INFO_FILE).is_file():
        generate_kaggle_demo(DEMOS[name](str(data)))
    print(describe_kaggle_demo(data), flush=True)
    os.environ["OMP_NUM_THREADS"] = str(cfg.threads)
    import torch

    torch.set_num_threads(cfg.threads)
    work = Path(cfg.work) / "runs" / name
    folds = work / "folds.csv"
    ensemble = work / "ensemble"
    submission = work / "submission.csv"
    model = work / RECIPE.stem
    fmt = data / _format_name(task)
    cache = Path(cfg.work) / "cache" / name
    train = ["--config", str(RECIPE), "--name", RECIPE.stem, "--data", str(data)]
    train += ["--folds-file", str(folds), "--runs-dir", str(work), "--quiet"]
    steps: list[tuple[str, str | None, list[str]]] = [
        ("folds", None, ["--data", str(data), "--out", str(folds), "--n-splits", str(N_SPLITS)]),
        ("train", None, [*train, "--set", f"cache_dir={cache}"]),
        ("ensemble", None, ["--config", str(ENSEMBLE_CONFIG), str(model), "--data", str(data)]),
        ("submit", "submit", ["--predictions", str(ensemble / "test.csv"), "--format", str(fmt)]),
        ("submit", "validate", [str(submission), "--format", str(fmt)]),
        ("report", None, [str(model), str(ensemble), "--data", str(data)]),
    ]
    outputs = {"ensemble": ensemble, "submit": submission, "report": work / "report"}
    for module, stage, argv in steps:
        out = outputs.get(stage or module)
        extra = ([] if out is None else ["--out", str(out)]) + ["--task", str(task)]
        _run_stage(module, stage, [*argv, *extra])
    print(_hidden_test_line(data, submission, task))
    print(
        f"demo {name} done in {time.perf_counter() - started:.0f} s: {submission}, "
        f"{work / 'report'}"
    )
    return 0


def _run_stage(module_name: str, command: str | None, argv: list[str]) -> None:
    """One command as `kaggle-style` runs it: its module's `Command`, its parser, its `run`."""
    module = importlib.import_module(f"kaggle_style.stages.{module_name}")
    name = command or module_name
    print(f"\n== {name}: {' '.join(argv)}", flush=True)
    stage = module.COMMANDS[name]
    parser = argparse.ArgumentParser(prog=f"kaggle-style {name}")
    stage.arguments(parser)
    status = stage.run(parser.parse_args(argv))
    if status:
        raise UserError(f"task demo: {name} stopped with status {status}")


def _format_name(task: Path) -> str:
    from kaggle_style.files import read_yaml

    return str(read_yaml(task)["tables"]["submission_format"])


def _hidden_test_line(data: Path, submission: Path, task: Path) -> str:
    """The demo knows its test labels (truth.csv): the submission's accuracy on them."""
    from kaggle_style.files import read_yaml

    spec = read_yaml(task)
    id_col, label_col = spec["id_column"], spec["submission"]["label_column"]
    truth = read_csv(data / TRUTH_FILE, dtype=str, keep_default_na=False)
    sub = read_csv(submission, dtype=str, keep_default_na=False)
    joined = sub.merge(truth, on=id_col, suffixes=("", "_true"))
    if label_col is None or len(joined) != len(sub):
        return "hidden test: not scored (probability submission or ids missing from truth.csv)"
    true = joined[f"{label_col}_true"]
    hits = (joined[label_col] == true).mean()
    commonest = truth.loc[truth["split"] == "train", label_col].value_counts().index[0]
    return (
        f"hidden test accuracy {hits:.3f} over {len(joined)} images (always the training's "
        f"commonest class, {commonest}: {(true == commonest).mean():.3f})"
    )
