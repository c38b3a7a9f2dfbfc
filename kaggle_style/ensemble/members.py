"""An ensemble's member runs, found again from its ensemble.json (what `predict` blends)."""

from __future__ import annotations

from pathlib import Path

from kaggle_style.constants import CONFIG_FILE, ENSEMBLE_FILE
from kaggle_style.ensemble.config import EnsembleError
from kaggle_style.ensemble.schema import EnsembleReport, read_report
from kaggle_style.training.integrity import check_run


def member_folders(run_dir: Path) -> tuple[list[Path], EnsembleReport]:
    """(each member's run folder, the report), every member checked as a run."""
    ens_file = run_dir / ENSEMBLE_FILE
    report = read_report(ens_file)
    runs = []
    for name, path in report.runs.items():
        # written relative to where `ensemble` ran; beside the ensemble folder is the fallback
        candidates = [Path(path), run_dir.parent / Path(path).name, run_dir.parent / name]
        found = next((p for p in candidates if (p / CONFIG_FILE).is_file()), None)
        if found is None:
            raise EnsembleError(f"{ens_file}: member run {name!r} ({path}) not found")
        check_run(found)
        runs.append(found)
    return runs, report
