"""An ensemble's members and its folder: what every reader checks before using an ensemble.

The ensemble records each member run's model hash; a member retrained under another config
since then would be blended with weights and a temperature fitted for the old model, so
`predict`, `report` and `submit` refuse it. The run contract itself (one config per run, done
marks) is `check_run`'s; this module is the ensemble's one caller of it.
"""

from __future__ import annotations

from pathlib import Path

from kaggle_style.constants import CONFIG_FILE, ENSEMBLE_FILE
from kaggle_style.ensemble.config import EnsembleError
from kaggle_style.ensemble.schema import RERUN, EnsembleReport, read_report
from kaggle_style.run_contract import check_run, fold_dirs, read_done


def checked_hash(folder: Path, models: bool = False) -> str | None:
    """A run checked by the run contract (with `models`, its model files too), and the model
    hash its folds were trained under (None for a folder without folds, e.g. an ensemble)."""
    check_run(folder, models=models)  # nothing to check in a folder without folds
    folds = fold_dirs(folder)
    mark = read_done(folds[0]) if folds else None
    return None if mark is None else str(mark["model_hash"])


def _find(run_dir: Path, name: str, path: str) -> Path | None:
    """A member as recorded (relative to where `ensemble` ran), else beside the ensemble."""
    candidates = [Path(path), run_dir.parent / Path(path).name, run_dir.parent / name]
    return next((p for p in candidates if (p / CONFIG_FILE).is_file()), None)


def read_ensemble(
    run_dir: Path, need_members: bool = False
) -> tuple[EnsembleReport, list[Path | None]]:
    """(the folder's ensemble.json, each member's folder): refused in one line when a member was
    retrained under another config after the ensemble was built. A member that is not found is
    an error only when `need_members` (predict needs its models; report and submit do not)."""
    ens_file = run_dir / ENSEMBLE_FILE
    report = read_report(ens_file)
    members = report.members or {}
    folders: list[Path | None] = []
    for name, path in report.runs.items():
        found = _find(run_dir, name, path)
        if found is None and need_members:
            raise EnsembleError(
                f"{ens_file}: member run {name!r} ({path}) not found; run "
                "predict where `ensemble` ran, or beside the member runs"
            )
        folders.append(found)
        if found is None:
            continue
        now = checked_hash(found, models=need_members)
        built = members[name].model_hash if name in members else None
        if built is not None and now != built:
            raise EnsembleError(
                f"{ens_file}: member {name!r} ({found}) was retrained under "
                f"config {now} after this ensemble blended {built}; {RERUN}"
            )
    return report, folders


def member_folders(run_dir: Path) -> tuple[list[Path], EnsembleReport]:
    """(each member's run folder, the report), for `predict`."""
    report, folders = read_ensemble(run_dir, need_members=True)
    return [f for f in folders if f is not None], report


def check_ensemble_folder(folder: Path) -> None:
    """For readers of an ensemble's files (submit): refuse one whose member changed."""
    if (folder / ENSEMBLE_FILE).is_file():
        read_ensemble(folder)
