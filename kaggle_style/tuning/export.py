"""The best trial of a study back as a train config: the study's base config + the best values."""

from __future__ import annotations

from pathlib import Path

import optuna
import yaml

from kaggle_style.config import config_dict, resolve_config
from kaggle_style.files import write_text
from kaggle_style.training.config import TrainConfig
from kaggle_style.tuning.study import DEFAULTS_ATTR, TuneError, load_tuned_study, slug

# Not carried into the exported config: the export trains every fold and tunes nothing.
DROPPED = ("git_commit", "search_space", "folds")


def export_best(
    study_name: str,
    storage: optuna.storages.BaseStorage,
    out: str | Path,
    name: str | None = None,
    storage_label: str = "",
) -> Path:
    """Write the best trial as a train config.

    `folds` is left out so that `train --config` trains every fold (the study may have tuned on
    one); the comments say which folds the trial used, its number and value.
    """
    study, base = load_tuned_study(storage, study_name, storage_label)
    states = optuna.trial.TrialState
    complete = study.get_trials(deepcopy=False, states=(states.COMPLETE,))
    if not complete:
        raise TuneError(
            f"study {study_name!r} has no complete trial yet; run `kaggle-style "
            "tune` (more trials, or wait for the running ones)"
        )
    best = study.best_trial
    values = {k: v for k, v in base.items() if k not in DROPPED}
    values.update(best.params)
    values["name"] = name or f"{slug(study_name)}-best"
    cfg = resolve_config(TrainConfig, overrides=values)
    exported = {k: v for k, v in config_dict(cfg).items() if k not in DROPPED}
    defaults = [t for t in complete if t.user_attrs.get(DEFAULTS_ATTR)]
    labels = {states.COMPLETE: "complete", states.PRUNED: "pruned", states.FAIL: "failed"}
    counts = {
        label: len(study.get_trials(deepcopy=False, states=(state,)))
        for state, label in labels.items()
    }
    tuned_folds = base.get("folds")
    header = [
        f"# Best trial of Optuna study '{study_name}'"
        + (f" ({storage_label})" if storage_label else "")
        + ", by kaggle-style tune-export.",
        f"# best trial: {best.number}  value (OOF log loss): {best.value!r}  "
        f"folds: {tuned_folds if tuned_folds is not None else 'all'}  "
        f"run: {best.user_attrs.get('run_dir', '?')}",
        "# defaults trial: "
        + (f"{defaults[0].number}  value: {defaults[0].value!r}" if defaults else "not complete"),
        "# trials: "
        + ", ".join(f"{n} {s}" for s, n in counts.items())
        + f"; tuned: {', '.join(best.params)}",
        "# `kaggle-style train --config THIS` trains every fold"
        + (
            f"; add --fold {' --fold '.join(map(str, tuned_folds))} to repeat the trial"
            if tuned_folds is not None
            else ""
        ),
    ]
    text = "\n".join(header) + "\n" + yaml.safe_dump(exported, sort_keys=False)
    return write_text(out, text)
