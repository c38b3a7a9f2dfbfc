"""`kaggle-style dashboard --storage URL`: optuna-dashboard for the studies there, on 127.0.0.1."""

from __future__ import annotations

import argparse
from typing import Annotated

from pydantic import Field

from kaggle_style.config import resolve_config, stage_config
from kaggle_style.config_flags import add_config_flags, flag_values
from kaggle_style.stages import Command


@stage_config
class DashboardConfig:
    """Where optuna-dashboard listens (always on 127.0.0.1: tunnel to reach it)."""

    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    """port on 127.0.0.1"""


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--storage",
        required=True,
        help="the study storage `tune` used (sqlite:///…, postgresql…, journal://…)",
    )
    add_config_flags(parser, DashboardConfig)


def run(args: argparse.Namespace) -> int:
    from kaggle_style.launch.dashboard import serve_dashboard

    serve_dashboard(
        args.storage, resolve_config(DashboardConfig, cli=flag_values(args, DashboardConfig)).port
    )
    return 0


COMMANDS = {"dashboard": Command(arguments, run)}
