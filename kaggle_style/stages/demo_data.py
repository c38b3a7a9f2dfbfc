"""`kaggle-style demo-data`: write the synthetic Conser-vision folder (kaggle_style.demo)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kaggle_style.config import add_config_arguments, resolve_config
from kaggle_style.demo.generator import INFO_FILE, DemoDataConfig, describe, generate


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--out", help="folder to write (default data/demo)")
    parser.add_argument("--seed", type=int, help="the same seed gives byte-identical files")
    parser.add_argument("--n-train", type=int, help="training images (default 480)")
    parser.add_argument("--n-test", type=int, help="test images (default 160)")
    parser.add_argument("--width", type=int, help="frame width in px (default 320)")
    parser.add_argument("--height", type=int, help="frame height in px (default 180)")


def run(args: argparse.Namespace) -> int:
    cfg = resolve_config(
        DemoDataConfig,
        args.config,
        args.overrides,
        out=args.out,
        seed=args.seed,
        n_train=args.n_train,
        n_test=args.n_test,
        width=args.width,
        height=args.height,
    )
    out = generate(cfg)
    print(describe(json.loads((Path(out) / INFO_FILE).read_text())))
    return 0
