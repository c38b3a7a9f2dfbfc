"""Submit training and tuning to Slurm through submitit (or to its local executor).

`submit_training`: every (recipe, fold) not yet done under its config becomes one task of a job
array; a job depending on the whole array (`afterok`, cancelled by Slurm when a task fails) then
writes each run's combined files. Nothing is submitted for a fold that is already done, and
nothing at all when every run is complete. `submit_tuning`: N workers of one study as an array.
`wait_for_training` follows the jobs through `squeue` (no accounting database needed) and names
the log of a job that failed.
"""

from __future__ import annotations

import contextlib
import io
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from kaggle_style.constants import FOLD_COL, OOF_FILE
from kaggle_style.errors import UserError
from kaggle_style.launch.jobs import FinishRuns, FoldJob, TuneWorker, with_values
from kaggle_style.launch.scheduler import wait_for_jobs, wait_for_training
from kaggle_style.launch.settings import SlurmSettings
from kaggle_style.run_contract import check_run, read_done
from kaggle_style.training.config import TrainConfig, model_hash

if TYPE_CHECKING:
    from kaggle_style.training.loop import EpochCallback


@dataclass
class Plan:
    """What a submission has to do: folds to train, runs whose combined files are to write."""

    folds: list[tuple[TrainConfig, int]] = field(default_factory=list)
    finish: list[TrainConfig] = field(default_factory=list)


@dataclass
class Submitted:
    fold_jobs: list[Any]
    finish_job: Any | None
    plan: Plan


def plan_training(cfgs: list[TrainConfig]) -> Plan:
    """Folds not done under each config's hash, and the runs that are not complete."""
    plan = Plan()
    for cfg in cfgs:
        folds_file = Path(cfg.folds_file)
        if not folds_file.is_file():
            raise UserError(
                f"{folds_file}: no folds file; run `make folds` (or `kaggle-style folds`) first"
            )
        all_folds = sorted(pd.read_csv(folds_file, usecols=[FOLD_COL])[FOLD_COL].unique())
        wanted = cfg.folds if cfg.folds is not None else [int(f) for f in all_folds]
        key = model_hash(cfg)
        todo = [f for f in wanted if read_done(cfg.run_dir / f"fold{f}", key) is None]
        plan.folds += [(cfg, f) for f in todo]
        if todo or not _complete(cfg):
            plan.finish.append(cfg)
    return plan


def _complete(cfg: TrainConfig) -> bool:
    if not (cfg.run_dir / OOF_FILE).exists():
        return False
    try:
        check_run(cfg.run_dir)
    except UserError:
        return False
    return True


def submit_training(
    cfgs: list[TrainConfig],
    settings: SlurmSettings,
    wait: bool = False,
    on_epoch_end: EpochCallback | None = None,
) -> Submitted:
    """One array task per fold to train, then the dependent job that combines the runs."""
    plan = plan_training(cfgs)
    folder = str(Path(settings.folder).absolute())
    fold_jobs: list[Any] = []
    if plan.folds:
        with sbatch_refusals(settings):
            executor = settings.executor("ks-fold", folder)
            with executor.batch():
                for cfg, fold in plan.folds:
                    fold_jobs.append(
                        executor.submit(FoldJob(cfg, fold, settings.gpus_per_job, on_epoch_end))
                    )
        for (cfg, fold), job in zip(plan.folds, fold_jobs, strict=True):
            print(f"{cfg.name} fold {fold}: job {job.job_id}", flush=True)
    finish_job = None
    if plan.finish:
        finisher = with_values(settings, gpus_per_job=0, time_min=min(settings.time_min, 60))
        with sbatch_refusals(settings):
            executor = finisher.executor("ks-finish", folder)
            if fold_jobs and settings.launcher == "slurm":
                # afterok: a failed fold leaves nothing to combine, and Slurm cancels the job
                # rather than keep it pending forever (DependencyNeverSatisfied)
                array_id = str(fold_jobs[0].job_id).split("_")[0]
                executor.update_parameters(dependency=f"afterok:{array_id}")
                executor.update_parameters(
                    additional_parameters={
                        **finisher.executor_sbatch(),
                        "kill_on_invalid_dep": "yes",
                    }
                )
            elif fold_jobs:  # the local executor has no scheduler to hold the job back
                for job in fold_jobs:
                    job.wait()
            finish_job = executor.submit(FinishRuns(plan.finish))
        names = ", ".join(c.name for c in plan.finish)
        print(
            f"runs {names}: combined by job {finish_job.job_id} once their folds are done",
            flush=True,
        )
    else:
        print("every fold of every run is done and combined: nothing to submit", flush=True)
    submitted = Submitted(fold_jobs, finish_job, plan)
    if wait and finish_job is not None:
        if settings.launcher == "slurm":
            wait_for_training(submitted.fold_jobs, submitted.plan.folds, finish_job)
        else:
            finish_job.result()
    return submitted


@contextlib.contextmanager
def sbatch_refusals(settings: SlurmSettings) -> Iterator[None]:
    """No `sbatch` here, or Slurm refusing a job (a partition it does not know, a time over the
    partition's limit): one line naming it, instead of submitit's traceback and echo."""
    if settings.launcher == "slurm" and shutil.which("sbatch") is None:
        raise UserError(
            "LAUNCHER=slurm: no `sbatch` on PATH; run on a Slurm login node (or use "
            "LAUNCHER=local to run the jobs as processes here)"
        )
    if settings.launcher != "slurm":
        yield
        return
    import submitit

    echoed = io.StringIO()
    try:
        with contextlib.redirect_stderr(echoed):
            yield
    except submitit.core.utils.FailedJobError as err:
        said = [line for line in str(err).splitlines() if line.strip()] or ["(no message)"]
        asked = ", ".join(
            text
            for text, given in (
                (f"partition {settings.partition}", settings.partition is not None),
                (f"GPUS_PER_JOB={settings.gpus_per_job}", bool(settings.gpus_per_job)),
                (f"{settings.time_min} min", True),
                (f"{settings.mem_gb} GB", settings.mem_gb is not None),
            )
            if given
        )
        raise UserError(
            f"sbatch refused the jobs ({asked}): {said[-1].strip()}; `sinfo -s` lists the "
            "partitions and their limits, `sinfo -o '%P %G'` their GPUs (GPUS_PER_JOB=0: none)"
        ) from None


def submit_tuning(tune_cfgs: list, settings: SlurmSettings, wait: bool = False) -> list[Any]:
    """Workers of one study (each its own sampler seed) as one job array on the shared storage."""
    with sbatch_refusals(settings):
        executor = settings.executor("ks-tune", str(Path(settings.folder).absolute()))
        with executor.batch():
            jobs = [executor.submit(TuneWorker(cfg)) for cfg in tune_cfgs]
    for i, job in enumerate(jobs):
        print(f"tune worker {i} of study {tune_cfgs[i].study!r}: job {job.job_id}", flush=True)
    if wait and settings.launcher == "slurm":
        wait_for_jobs([(f"tune worker {i}", job) for i, job in enumerate(jobs)])
    elif wait:
        for job in jobs:
            job.result()
    return jobs
