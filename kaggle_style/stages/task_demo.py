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


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", choices=sorted(DEMOS), help="the demo's task (configs/tasks/)")
    parser.add_argument("--data", help="its data folder (default data/NAME; generated if absent)")
    parser.add_argument("--out", default=".", help="outputs go under OUT/runs/NAME (default .)")
    parser.add_argument("--threads", type=int, default=2, help="torch's CPU threads (default 2)")


def run_demo(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    name = args.name
    task = TASKS_DIR / f"{name}.yaml"
    if not task.is_file():
        raise UserError(f"{task}: the task file of demo {name} is missing; run from the checkout")
    data = Path(args.data or Path("data") / name)
    if not (data / INFO_FILE).is_file():
        generate_kaggle_demo(DEMOS[name](str(data)))
    print(describe_kaggle_demo(data), flush=True)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    work = Path(args.out) / "runs" / name
    folds = work / "folds.csv"
    ensemble = work / "ensemble"
    submission = work / "submission.csv"
    model = work / RECIPE.stem
    fmt = data / _format_name(task)
    cache = Path(args.out) / "cache" / name
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


def _run_stage(name: str, stage: str | None, argv: list[str]) -> None:
    """One stage as `kaggle-style` runs it: its module, its own parser, then its `run`."""
    module = importlib.import_module(f"kaggle_style.stages.{name}")
    label = stage or name
    print(f"\n== {label}: {' '.join(argv)}", flush=True)
    parser = argparse.ArgumentParser(prog=f"kaggle-style {label}")
    if stage is None:
        module.add_arguments(parser)
        status = module.run(parser.parse_args(argv))
    else:
        module.add_arguments(parser, stage)
        status = module.run(parser.parse_args(argv), stage)
    if status:
        raise UserError(f"task demo: {label} stopped with status {status}")


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
