"""The closing lines of `make demo`: how good the predictions are and where the submission is."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from kaggle_style.constants import ENSEMBLE_FILE, METRICS_FILE
from kaggle_style.metrics import format_summary


def summarise(run_dir: Path, submission: Path) -> str:
    lines = []
    metrics = json.loads((run_dir / METRICS_FILE).read_text())
    lines.append(format_summary(f"{run_dir.name} OOF", metrics["overall"]))
    ensemble_path = run_dir / ENSEMBLE_FILE
    if ensemble_path.exists():
        final = json.loads(ensemble_path.read_text())["final"]
        lines.append(
            f"ensemble OOF log loss: in-sample {final['in_sample']['log_loss']:.4f}, nested "
            f"{final['nested']['log_loss']:.4f} (weights and T fitted on the other folds: the "
            "honest estimate)"
        )
    lines.append(f"submission: {submission} (validated)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m kaggle_style.summary RUN_DIR SUBMISSION", file=sys.stderr)
        return 2
    print(summarise(Path(args[0]), Path(args[1])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
