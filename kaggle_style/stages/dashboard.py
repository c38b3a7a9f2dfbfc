"""`kaggle-style dashboard --storage URL`: optuna-dashboard for the studies there, on 127.0.0.1."""

from __future__ import annotations

import argparse

from kaggle_style.stages import Command


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--storage",
        required=True,
        help="the study storage `tune` used (sqlite:///…, postgresql…, journal://…)",
    )
    parser.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 (8080)")


def run(args: argparse.Namespace) -> int:
    from kaggle_style.launch.dashboard import serve_dashboard

    serve_dashboard(args.storage, args.port)
    return 0


COMMANDS = {"dashboard": Command(arguments, run)}
