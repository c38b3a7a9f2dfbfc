"""`kaggle-style model-set NAME --field models`: what a named set trains, for the Makefile.

`MODELS = $(shell kaggle-style model-set $(SET) --field models)` keeps the list in
`configs/sets/NAME.yaml` only; `--list` prints every set with its description and GPU time.
"""

from __future__ import annotations

import argparse

from kaggle_style.stages import Command

FIELDS = ("models", "ensemble", "description", "gpu_time")


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="set name (configs/sets/NAME.yaml) or a YAML file")
    parser.add_argument(
        "--field",
        choices=FIELDS,
        default="models",
        help="what to print: model names (space-separated), the ensemble "
        "config path, the description or the expected GPU time",
    )
    parser.add_argument("--list", action="store_true", help="every set: name, GPU time, models")
    parser.add_argument("--root", default=".", help="project root holding configs/")
    parser.add_argument(
        "--check-models",
        nargs="+",
        metavar="MODEL",
        help="check that configs/MODEL.yaml exists and resolves, for each MODEL",
    )


def run(args: argparse.Namespace) -> int:
    from kaggle_style.sets import (
        ModelSetError,
        available_sets,
        check_models,
        field_value,
        load_set,
    )

    if args.check_models:
        check_models(args.check_models, args.root)
        return 0

    if args.list:
        for name in available_sets(args.root):
            files = load_set(name, args.root)
            print(f"{name:<12} {files.spec.gpu_time:<40} {' '.join(files.spec.models)}")
        return 0
    if not args.name:
        raise ModelSetError("give a set name (e.g. `kaggle-style model-set fast`) or --list")
    print(field_value(load_set(args.name, args.root), args.field))
    return 0


COMMANDS = {"model-set": Command(arguments, run)}
