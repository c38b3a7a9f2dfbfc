"""`kaggle-style tune` (one worker of a shared Optuna study) and `tune-export` (best -> config)."""

from __future__ import annotations

import argparse

from kaggle_style.config import resolve_config
from kaggle_style.config_flags import add_config_flags, flag_values
from kaggle_style.stages import Command
from kaggle_style.tuning.config import ExportConfig, TuneConfig


def tune_arguments(parser: argparse.ArgumentParser) -> None:
    """TuneConfig comes from the flags alone: its `--config` and `--set` are fields, the trained
    recipe and overrides of its keys (not layers of TuneConfig)."""
    add_config_flags(parser, TuneConfig, aliases={"overrides": "--set"}, required=True)


def run_tune(args: argparse.Namespace) -> int:
    from kaggle_style.tuning.run import tune

    tune(resolve_config(TuneConfig, cli=flag_values(args, TuneConfig)))
    return 0


def export_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_flags(parser, ExportConfig, required=True)


def run_export(args: argparse.Namespace) -> int:
    from kaggle_style.tuning.run import export

    print(f"wrote {export(resolve_config(ExportConfig, cli=flag_values(args, ExportConfig)))}")
    return 0


COMMANDS = {
    "tune": Command(tune_arguments, run_tune),
    "tune-export": Command(export_arguments, run_export),
}
