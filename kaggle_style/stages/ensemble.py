"""`kaggle-style ensemble`: blend runs' OOF predictions, then the gated per-row steps."""

from __future__ import annotations

import argparse

from kaggle_style.config_flags import add_config_arguments, add_config_flags, config_from_args
from kaggle_style.ensemble.run import EnsembleConfig, ensemble
from kaggle_style.ensemble.table import render
from kaggle_style.files import check_outputs
from kaggle_style.stages import Command


def arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    add_config_flags(parser, EnsembleConfig, positional=("runs",))


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(EnsembleConfig, args)
    check_outputs(
        {"--out": cfg.out},
        {
            **{f"run {r}": r for r in cfg.runs},
            "--data": cfg.data,
            "--meta": cfg.meta,
            "--detections": cfg.detections,
        },
    )
    result = ensemble(cfg)
    print(render(result.report, str(cfg.out)))
    return 0


COMMANDS = {"ensemble": Command(arguments, run)}
