"""`kaggle-style <stage>`: one subcommand per stage, each a thin layer over its module.

A stage's module is imported only when that stage runs, so `--help` is instant and a stage's
heavy imports (torch, timm) never slow down another's. Each module provides
`add_arguments(parser)` and `run(args) -> int`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help). The order is the pipeline's order.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo-data": ("kaggle_style.data.demo", "generate the embedded demo dataset"),
    "folds": ("kaggle_style.folds", "site-grouped, class-stratified folds -> folds/folds.csv"),
    "detect": ("kaggle_style.detect.run", "run an animal detector once -> MegaDetector JSON"),
    "crop": ("kaggle_style.detect.crops", "cache crops at several thresholds + a manifest"),
    "show-detections": ("kaggle_style.detect.show", "draw detection boxes on images into PNGs"),
    "train": ("kaggle_style.train", "train a timm backbone on every fold -> oof.csv, test.csv"),
    "tune": ("kaggle_style.tune", "Optuna study over a config's search space"),
    "tune-export": ("kaggle_style.tune", "write a study's best trial as a train config"),
    "ensemble": ("kaggle_style.ensemble", "blend runs' OOF predictions, temperature-scale"),
    "submit": ("kaggle_style.submission", "write and validate a submission CSV"),
    "validate": ("kaggle_style.submission", "check a submission file against the format"),
    "score": ("kaggle_style.submission", "score OOF or submission-shaped predictions"),
    "predict": ("kaggle_style.predict", "class probabilities for any folder of images"),
    "report": ("kaggle_style.report", "HTML report: tables, confusion, calibration, sites"),
    "bench": ("kaggle_style.bench", "throughput: model-only bound vs end-to-end images/s"),
}


def _top_parser() -> argparse.ArgumentParser:
    lines = [f"  {name:<16} {help_}" for name, (_, help_) in COMMANDS.items()]
    return argparse.ArgumentParser(
        prog="kaggle-style",
        description="Camera-trap competition submissions, one stage per subcommand.",
        epilog="stages:\n" + "\n".join(lines) + "\n\n`kaggle-style STAGE --help` for a stage.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    top = _top_parser()
    if not argv or argv[0] not in COMMANDS:
        top.add_argument("stage", choices=list(COMMANDS), help="the stage to run")
        top.parse_args(argv)  # prints help or the error, and exits
        return 2
    name, rest = argv[0], argv[1:]
    module_name, help_ = COMMANDS[name]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"kaggle-style {name}", description=help_)
    add_arguments = module.add_arguments
    run = module.run
    # Modules serving several stages take the stage name to tell them apart.
    if getattr(module, "MULTI_STAGE", False):
        add_arguments(parser, name)
        args = parser.parse_args(rest)
        return int(run(args, name) or 0)
    add_arguments(parser)
    args = parser.parse_args(rest)
    return int(run(args) or 0)
