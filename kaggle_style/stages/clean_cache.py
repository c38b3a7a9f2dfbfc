"""`kaggle-style clean-cache`: remove image caches that no config in configs/ uses.

A cache is keyed by its sources and size, so each recipe (at one DATA folder, one crops manifest)
uses exactly two: train and test. Everything else in cache_dir (old sizes, tuning trials, an
older crops run, a killed build's temp files) only takes disk. Dry run by default.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from kaggle_style.config import read_yaml, resolve_config
from kaggle_style.config_flags import add_config_flags, flag_values
from kaggle_style.data import cache_admin
from kaggle_style.errors import UserError
from kaggle_style.stages import Command
from kaggle_style.training.config import TrainConfig

SHARED_KEYS = ("data", "crops_manifest", "cache_dir")  # which caches exist depends on these


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--configs",
        nargs="+",
        type=Path,
        default=[Path("configs")],
        help="config files or folders of them (configs/)",
    )
    add_config_flags(parser, TrainConfig, only=SHARED_KEYS)  # over each config's own
    parser.add_argument(
        "--set",
        dest="overrides",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="override keys of every config, as `train --set` does",
    )
    parser.add_argument("--yes", action="store_true", help="delete (default: only list)")


def config_files(paths: list[Path]) -> list[Path]:
    files = [f for p in paths for f in (sorted(p.glob("*.yaml")) if p.is_dir() else [p])]
    if not files:
        raise UserError(f"no config files in {', '.join(map(str, paths))}; pass --configs DIR")
    return files


def used_keys(files: list[Path], overrides: list[str], **values: Any) -> dict[str, list[str]]:
    """key -> the configs that use it.

    A data folder that cannot be read stops everything (a mistyped DATA must not make every
    cache look unused); a config whose crops manifest is missing uses no cache that exists now.
    """
    from kaggle_style.training.data import cache_plan, load_training_data

    used: dict[str, list[str]] = {}
    tables: dict[str, Any] = {}
    for path in files:
        if "backbone" not in read_yaml(path):
            continue  # not a training recipe (an ensemble config, a set)
        cfg = resolve_config(TrainConfig, path, overrides, **values)
        if cfg.data not in tables:
            tables[cfg.data] = load_training_data(cfg)  # through the recipe's task
        try:
            keys = cache_plan(cfg, tables[cfg.data]).keys(cfg)
        except UserError as err:
            print(f"clean-cache: {path.name}: uses no current cache ({err})", file=sys.stderr)
            continue
        for key in keys:
            used.setdefault(key, []).append(path.stem)
    return used


def run(args: argparse.Namespace) -> int:
    files = config_files(args.configs)
    used = used_keys(files, args.overrides, **flag_values(args, TrainConfig))
    cache_dir = Path(args.cache_dir or TrainConfig().cache_dir)
    plan = cache_admin.plan_clean(cache_dir, used)
    for cache in plan.keep:
        print(
            f"keep    {cache.folder}  {cache_admin.human(cache.bytes):>9}  used by "
            f"{', '.join(sorted(set(used[cache.key])))}"
        )
    for cache in plan.remove:
        state = "unused" if cache.complete else "unfinished"
        print(f"remove  {cache.folder}  {cache_admin.human(cache.bytes):>9}  {state}")
    for path in plan.stale:
        print(f"remove  {path}  (temp file of a dead build)")
    freed = cache_admin.human(plan.bytes_freed)
    if not args.yes:
        print(f"dry run: would free {freed} in {cache_dir}; rerun with --yes to delete")
        return 0
    cache_admin.apply_clean(plan)
    print(
        f"freed {freed} in {cache_dir} ({len(plan.remove)} cache(s) removed, {len(plan.keep)} kept)"
    )
    return 0


COMMANDS = {"clean-cache": Command(arguments, run)}
