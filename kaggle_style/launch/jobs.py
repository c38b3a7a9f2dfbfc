"""What a cluster job runs: one fold (checkpointable), the runs' combined files, a tuning worker.

Each is a plain call into the trainer a box runs today (`run_training` with one fold, resumed),
so fold locks, done marks and "whoever finishes last writes the run's files" work unchanged.
When Slurm preempts a fold or its time runs out, submitit calls `checkpoint()`: the job is
requeued with the same arguments and resumes from the fold's last epoch checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from submitit.helpers import Checkpointable

from kaggle_style.config import config_dict
from kaggle_style.files import write_json, write_yaml
from kaggle_style.training.fold_locks import LOCK_FILE, read_lock

if TYPE_CHECKING:
    from kaggle_style.training.config import TrainConfig
    from kaggle_style.training.loop import EpochCallback
    from kaggle_style.tuning.config import TuneConfig

Config = TypeVar("Config")

ATTEMPT_FILE = ".launch.json"  # which Slurm job last started this fold, on which host


def with_values(cfg: Config, **changes: Any) -> Config:
    """A copy of a config with some keys changed, checked again by its constructor."""
    return type(cfg)(**{**config_dict(cfg), **changes})


def job_id() -> str:
    """This job's id, the same across its requeues ("123_4" for an array task)."""
    import submitit

    try:
        return str(submitit.JobEnvironment().job_id)
    except RuntimeError:  # not inside a submitit job: a direct call
        return f"pid{os.getpid()}"


def take_over_own_lock(fold_dir: Path) -> None:
    """A requeued job lands on any node: a fold lock its earlier attempt left there (killed with
    its node, or preempted mid-write) names another host, which the lock would trust forever."""
    me = {
        "job_id": job_id(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    marker = fold_dir / ATTEMPT_FILE
    before = json.loads(marker.read_text()) if marker.exists() else None
    lock = read_lock(fold_dir / LOCK_FILE)
    if (
        before is not None
        and lock is not None
        and before.get("job_id") == me["job_id"]
        and lock.get("host") == before.get("host")
        and str(lock.get("started", "")) >= str(before.get("started", ""))
    ):
        print(
            f"fold lock {fold_dir / LOCK_FILE} left by this job's earlier attempt on "
            f"{before['host']}: taken over",
            flush=True,
        )
        with contextlib.suppress(FileNotFoundError):
            (fold_dir / LOCK_FILE).unlink()
    fold_dir.mkdir(parents=True, exist_ok=True)
    write_json(marker, me)


class FoldJob(Checkpointable):
    """Train one fold of one recipe, resuming from its checkpoint; requeued on preemption."""

    def __init__(
        self,
        cfg: TrainConfig,
        fold: int,
        gpus: int = 1,
        on_epoch_end: EpochCallback | None = None,
    ) -> None:
        self.cfg = with_values(cfg, folds=[fold], resume=True, progress=False)
        self.fold = fold
        self.gpus = gpus
        self.on_epoch_end = on_epoch_end  # (fold, epoch, val loss), as run_training takes it

    def __call__(self) -> dict[str, Any]:
        take_over_own_lock(self.cfg.run_dir / f"fold{self.fold}")
        if self.gpus > 1:
            return self._accelerate_launch()
        from kaggle_style.training.run import run_training

        return run_training(self.cfg, self.on_epoch_end)

    def _accelerate_launch(self) -> dict[str, Any]:
        """DDP over this job's GPUs, as `make train LAUNCH=...` does on one box."""
        config = self.cfg.run_dir / f"fold{self.fold}" / "launch_config.yaml"
        write_yaml(config, config_dict(self.cfg))
        command = [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--multi_gpu",
            "--num_processes",
            str(self.gpus),
            "-m",
            "kaggle_style",
            "train",
            "--config",
            str(config),
            "--quiet",
        ]
        child = subprocess.Popen(command, start_new_session=True)
        try:
            status = child.wait()
        except BaseException:  # submitit's preemption handler exits this process: stop the ranks
            os.killpg(child.pid, signal.SIGTERM)
            try:
                child.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
            raise
        if status != 0:
            raise RuntimeError(f"{' '.join(command)} exited with status {status}")
        return {"fold": self.fold, "gpus": self.gpus}


class FinishRuns:
    """The dependent job: each run's oof.csv, test.csv and metrics.json once its folds are done.

    The trainer with no fold to train does exactly this (and says which folds are missing)."""

    def __init__(self, cfgs: list) -> None:
        self.cfgs = [with_values(c, folds=[], resume=True, progress=False) for c in cfgs]

    def __call__(self) -> dict[str, Any]:
        from kaggle_style.training.run import run_training

        overall = {cfg.name: run_training(cfg).get("overall") for cfg in self.cfgs}
        missing = sorted(name for name, scores in overall.items() if scores is None)
        if missing:
            raise RuntimeError(
                f"run(s) {', '.join(missing)} still have unfinished folds (see "
                "the fold jobs' logs); `make train LAUNCHER=slurm` again resubmits "
                "only those, resuming from their checkpoints"
            )
        return overall


class TuneWorker(Checkpointable):
    """One Optuna worker on the shared storage; a requeued worker joins the study again."""

    def __init__(self, tune_cfg: TuneConfig) -> None:
        self.tune_cfg = tune_cfg

    def __call__(self) -> dict[str, Any]:
        from kaggle_style.tuning.run import tune

        study = tune(self.tune_cfg)
        return {"study": self.tune_cfg.study, "trials": 0 if study is None else len(study.trials)}
