"""`kaggle-style gpu-check`: bench + the real-size pipeline, one JSON line (`--small` on CPU)."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

from kaggle_style.checks.gpu_check import DETECTOR_WEIGHTS, GpuCheckConfig, gpu_check


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--small", action="store_true",
                        help="CPU-sized: tiny models and data, same stages (about a minute)")
    parser.add_argument("--work-dir", default="gpu_check", help="generated data and outputs")
    parser.add_argument("--weights", default=DETECTOR_WEIGHTS, help="MegadetectorLite weights")
    parser.add_argument("--only", choices=("bench", "pipeline"), help="run one part")


def run(args: argparse.Namespace) -> int:
    cfg = GpuCheckConfig.small(args.work_dir) if args.small else GpuCheckConfig(args.work_dir)
    cfg = replace(cfg, detector_weights=args.weights)
    parts = (args.only,) if args.only else ("bench", "pipeline")
    result = gpu_check(cfg, parts)
    print(json.dumps(result))
    return 0 if "pipeline_error" not in result else 1
