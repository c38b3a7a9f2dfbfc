"""Run pipeline stages as a user would (`python -m kaggle_style STAGE …`), timing each one.

Shared by the full-size benchmarks (`gpu_check`, `real_dry_run`): each stage is its own
process, so its seconds and peak memory are its own, and nothing is special-cased for them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any


def _peak_kib(pid: int) -> int:
    """The process's own high-water mark (VmHWM). Not `wait4`'s ru_maxrss: Linux folds the
    parent's memory at fork into it, so every stage would report the checker's size."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, ValueError):
        pass
    return 0


class StageFailed(RuntimeError):
    """A stage exited non-zero: the check stops there and says which stage and why."""


@dataclass
class StageTimer:
    """Seconds and peak resident memory (MiB, the stage's main process, sampled every 0.2 s)
    of each stage, in the order they ran."""

    log: Any = None  # a writable text stream for the stages' output (None: inherit)
    stages: dict[str, dict[str, float]] = field(default_factory=dict)

    def run(self, name: str, stage: str, *args: Any, env: dict[str, str] | None = None) -> None:
        cmd = [sys.executable, "-m", "kaggle_style", stage, *map(str, args)]
        started = time.perf_counter()
        process = subprocess.Popen(
            cmd,
            stdout=self.log,
            stderr=subprocess.STDOUT if self.log else None,
            env={**os.environ, **(env or {})},
        )
        peak_kib = 0
        while process.poll() is None:
            peak_kib = max(peak_kib, _peak_kib(process.pid))
            time.sleep(0.2)
        seconds = time.perf_counter() - started
        self.stages[name] = {"seconds": round(seconds, 2), "peak_rss_mib": round(peak_kib / 1024)}
        print(
            f"[{name}] {seconds:.1f} s, peak {peak_kib / 1024:.0f} MiB (exit {process.returncode})",
            flush=True,
        )
        if process.returncode != 0:
            raise StageFailed(
                f"stage {name} failed (exit {process.returncode}): " + " ".join(cmd[2:])
            )

    def total_seconds(self) -> float:
        return round(sum(s["seconds"] for s in self.stages.values()), 1)
