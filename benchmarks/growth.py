"""How each stage's time grows with the data, between two runs of `real_dry_run`.

A stage that grows faster than the data is the one that will not fit the real job; a fixed
start-up (imports of torch, timm, pandas) hides that growth, so it is measured and taken off.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from collections.abc import Iterable
from typing import Any

# A stage whose time grows more than this factor above the data's growth is flagged, unless
# it took under MIN_FLAG_SECONDS at full size (noise); work ratios need MIN_WORK_SECONDS.
SUPERLINEAR_SLACK = 1.25
MIN_FLAG_SECONDS = 3.0
MIN_WORK_SECONDS = 0.5


def startup_seconds(names: Iterable[str], threads: int = 1) -> dict[str, float]:
    """Each command's fixed cost: a process that imports its stage module and reads no data
    (torch, timm, pandas). Subtracted before comparing sizes, or it hides how the work grows.
    Names that are not commands (steps run in the checker's process) are left out."""
    from kaggle_style.cli import COMMANDS

    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    out = {}
    for command in (n for n in names if n in COMMANDS):
        code = f"import kaggle_style.cli, kaggle_style.stages.{COMMANDS[command][0]}"
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=env)
        out[command] = round(time.perf_counter() - started, 2)
    return out


def growth(
    small: dict[str, Any], full: dict[str, Any], startup: dict[str, float] | None = None
) -> dict[str, Any]:
    """Each stage's time ratio between two runs against the data's growth (ids).

    `ratio` is of the whole times; `work_ratio` of the times less the stage's start-up (when
    the small run spent at least MIN_WORK_SECONDS past it). A ratio at or under the data's
    growth is linear or better (capped training steps make train's less); `superlinear` names
    the stages whose work grew more than SUPERLINEAR_SLACK times faster than the data.
    """
    startup = startup or {}
    data_growth = (full["train_ids"] + full["test_ids"]) / (small["train_ids"] + small["test_ids"])
    rows = {}
    for name, stage in full["stages"].items():
        before = small["stages"].get(name, {}).get("seconds")
        if not before:
            continue
        base = startup.get(name, 0.0)
        work_ratio = None
        if before - base >= MIN_WORK_SECONDS:
            work_ratio = round(max(stage["seconds"] - base, 0.0) / (before - base), 2)
        ratio = stage["seconds"] / before
        rows[name] = {
            "seconds_small": before,
            "seconds_full": stage["seconds"],
            "startup_s": startup.get(name),
            "peak_mib_small": small["stages"][name].get("peak_rss_mib"),
            "peak_mib_full": stage.get("peak_rss_mib"),
            "ratio": round(ratio, 2),
            "work_ratio": work_ratio,
            "exponent": _exponent(work_ratio or ratio, data_growth),
        }
    superlinear = [
        n
        for n, r in rows.items()
        if (r["work_ratio"] or r["ratio"]) > SUPERLINEAR_SLACK * data_growth
        and r["seconds_full"] >= MIN_FLAG_SECONDS
    ]
    return {"data_growth": round(data_growth, 2), "stages": rows, "superlinear": superlinear}


def _exponent(ratio: float, data_growth: float) -> float | None:
    """k in time ∝ n^k between the two sizes."""
    if ratio <= 0 or data_growth <= 1:
        return None
    return round(math.log(ratio) / math.log(data_growth), 2)


def format_growth(table: dict[str, Any]) -> str:
    """The growth table: whole and start-up-less ratios against the data's growth."""
    lines = [
        f"data growth {table['data_growth']}x (ids); time per stage, small -> full:",
        f"{'stage':<20} {'small s':>8} {'full s':>8} {'start s':>8} {'ratio':>6} "
        f"{'work':>6} {'exp':>5} {'MiB small':>9} {'MiB full':>9}",
    ]

    def cell(value: Any, width: int) -> str:
        return f"{'-' if value is None else value:>{width}}"

    for name, r in table["stages"].items():
        lines.append(
            f"{name:<20} {r['seconds_small']:>8.1f} {r['seconds_full']:>8.1f} "
            f"{cell(r['startup_s'], 8)} {r['ratio']:>6.2f} {cell(r['work_ratio'], 6)} "
            f"{cell(r['exponent'], 5)} {cell(r['peak_mib_small'], 9)} "
            f"{cell(r['peak_mib_full'], 9)}"
        )
    lines.append("faster than linear: " + (", ".join(table["superlinear"]) or "none"))
    return "\n".join(lines)
