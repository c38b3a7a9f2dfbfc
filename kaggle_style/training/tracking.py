"""Live numbers of a run through Accelerate's trackers: TensorBoard (default), MLflow or W&B.

Each fold logs to its own run, `RUN/tracking/fold<k>/` by default (TensorBoard event files,
offline): training loss and learning rate at every loss read, and per epoch the validation log
loss and F1, the training images/s and the peak memory. Steps count optimiser steps from the
fold's start, so a resumed fold continues the same curve; TensorBoard is told to purge what an
interrupted attempt logged past the checkpoint it resumes from, so no step is shown twice.
The trackers are built here, not through `Accelerator(log_with=...)`: the Accelerator lives for
the whole run, and each fold needs its own tracker run, opened and finished with the fold.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from kaggle_style.constants import ID_COL
from kaggle_style.errors import UserError

if TYPE_CHECKING:
    import optuna
    from accelerate import Accelerator
    from accelerate.tracking import GeneralTracker

    from kaggle_style.training.config import TrainConfig

TRACKING_DIR = "tracking"
TRACKERS = ("tensorboard", "mlflow", "wandb", "none")
# The packages each tracker needs beyond the project's own (TensorBoard is a dependency).
PACKAGES = {"mlflow": "mlflow", "wandb": "wandb"}

LossLogger = Callable[[int, float, float], None]  # (step in epoch, mean loss, lr)


def open_tracker(
    kind: str, run_name: str, folder: Path, project: str, purge_step: int | None = None
) -> GeneralTracker | None:
    """An Accelerate tracker writing `run_name` under `folder` (None for `none`)."""
    if kind == "none":
        return None
    if kind not in TRACKERS:
        raise UserError(f"tracker: {kind!r} is not one of {', '.join(TRACKERS)}")
    package = PACKAGES.get(kind)
    if package is not None:
        import importlib.util

        if importlib.util.find_spec(package) is None:
            raise UserError(
                f"tracker: {kind} needs the {package} package (pip install {package}),"
                " or use tracker: tensorboard (files under the run) or none"
            )
    from accelerate import tracking

    folder.mkdir(parents=True, exist_ok=True)
    if kind == "tensorboard":
        kwargs = {} if purge_step is None else {"purge_step": purge_step}
        tracker = tracking.TensorBoardTracker(run_name, str(folder), **kwargs)
    elif kind == "mlflow":  # a file store in the run unless MLFLOW_TRACKING_URI says otherwise
        tracker = tracking.MLflowTracker(
            experiment_name=project,
            run_name=run_name,
            logging_dir=os.environ.get("MLFLOW_TRACKING_URI", (folder / "mlruns").as_uri()),
        )
    else:  # offline unless WANDB_MODE says otherwise: no network call by default
        tracker = tracking.WandBTracker(
            project,
            name=run_name,
            dir=str(folder),
            group=project,
            mode=os.environ.get("WANDB_MODE", "offline"),
        )
    tracker.start()
    return tracker


def peak_memory() -> dict[str, float]:
    """Peak GPU memory on CUDA; the process's peak resident memory otherwise (GiB)."""
    import torch

    if torch.cuda.is_available():
        return {"memory/peak_gpu_gib": torch.cuda.max_memory_allocated() / 2**30}
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return {
        "memory/peak_host_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**30
    }


class FoldTracking:
    """One fold's tracker run; every method is a no-op off the main process or with `none`."""

    def __init__(
        self,
        cfg: TrainConfig,
        fold: int,
        accelerator: Accelerator,
        steps_per_epoch: int,
        start_epoch: int,
    ) -> None:
        self.steps = steps_per_epoch
        self.images_per_step = cfg.batch_size * accelerator.num_processes  # per loader step
        self.tracker = None
        if accelerator.is_main_process:
            self.tracker = open_tracker(
                cfg.tracker,
                f"fold{fold}",
                cfg.run_dir / TRACKING_DIR,
                cfg.name,
                purge_step=start_epoch * steps_per_epoch + 1,
            )
        self._started = self._last = time.perf_counter()
        self._trained = 0  # steps trained this epoch, as of the last loss read

    def log(self, values: dict[str, Any], step: int) -> None:
        if self.tracker is not None:
            self.tracker.log(values, step=step)

    def losses(self, epoch: int) -> LossLogger:
        """What `train_one_epoch` calls at each loss read; starts the epoch's clock."""
        self._started = self._last = time.perf_counter()
        self._trained = 0

        def logged(step: int, loss: float, lr: float) -> None:
            self._trained, self._last = step + 1, time.perf_counter()
            self.log({"train/loss": loss, "train/lr": lr}, epoch * self.steps + step + 1)

        return logged

    def epoch(
        self,
        epoch: int,
        val_frame: pd.DataFrame,
        label_of: dict[str, int],
        classes: tuple[str, ...],
    ) -> None:
        """Validation scores, training speed and peak memory at the epoch's last step."""
        if self.tracker is None:
            return
        from kaggle_style.metrics import score

        y_true = np.array([label_of[i] for i in val_frame[ID_COL]])
        scores = score(y_true, val_frame[list(classes)].to_numpy(), classes)
        values = {
            "val/log_loss": scores["log_loss"],
            "val/f1_macro": scores["f1_macro"],
            "val/accuracy": scores["accuracy"],
            "epoch": epoch + 1,
            **peak_memory(),
        }
        seconds = self._last - self._started
        if self._trained and seconds > 0:
            values["train/images_per_s"] = self._trained * self.images_per_step / seconds
        self.log(values, (epoch + 1) * self.steps)

    def close(self) -> None:
        if self.tracker is not None:
            self.tracker.finish()
            self.tracker = None


class TrialTracking:
    """An Optuna callback: each finished trial's parameters and value, at step = trial number,
    in `RUNS/<study>/tracking/trials` beside the trials' own runs (same tracker as training)."""

    def __init__(self, kind: str, runs_dir: str | Path, study_slug: str) -> None:
        self.kind = kind
        self.folder = Path(runs_dir) / study_slug / TRACKING_DIR
        self.project = study_slug

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        tracker = open_tracker(self.kind, "trials", self.folder, self.project)
        if tracker is None:
            return
        values: dict[str, Any] = {f"param/{k}": v for k, v in trial.params.items()}
        values["trial/complete"] = int(trial.state.name == "COMPLETE")
        if trial.value is not None:
            values["trial/value"] = float(trial.value)
        try:
            tracker.log(values, step=trial.number)
        finally:
            tracker.finish()
