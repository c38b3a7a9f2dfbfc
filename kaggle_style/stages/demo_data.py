"""`kaggle-style demo-data`: write the synthetic Conser-vision folder (kaggle_style.demo)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kaggle_style.config_flags import add_config_arguments, add_config_flags, config_from_args
from kaggle_style.demo.generator import INFO_FILE, DemoDataConfig, describe, generate
from kaggle_style.stages import Command


def arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    add_config_flags(parser, DemoDataConfig)


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(DemoDataConfig, args)
    out = generate(cfg)
    print(describe(json.loads((Path(out) / INFO_FILE).read_text())))
    return 0


COMMANDS = {"demo-data": Command(arguments, run)}
