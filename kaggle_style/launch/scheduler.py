"""Following submitted Slurm jobs to their end with `squeue` alone.

submitit asks `sacct`, which needs Slurm's accounting database; many small clusters (and the
tests' one-node cluster) run without it. A job has ended when `squeue` no longer lists it (a
requeued job is listed again as pending); whether it succeeded is what submitit's result file
says: a job killed, cancelled or lost with its node leaves none.
"""

from __future__ import annotations

import subprocess
import time
from typing import Any

from kaggle_style.errors import UserError

POLL_SECONDS = 2.0


def queued(job_ids: list[str]) -> set[str] | None:
    """The ids among `job_ids` Slurm still lists (pending, running, requeued, completing), array
    tasks as `<array>_<task>`; None when `squeue` did not answer (try again later)."""
    arrays = sorted({str(j).split("_")[0] for j in job_ids})
    result = subprocess.run(
        ["squeue", "-h", "-r", "-o", "%i", "-j", ",".join(arrays)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        # Slurm forgets ended jobs after MinJobAge: asking only about those is "invalid job id"
        return set() if "Invalid job id" in result.stderr else None
    listed = set(result.stdout.split())
    return {str(j) for j in job_ids if str(j) in listed}


def _outcome(job: Any, still_queued: set[str]) -> str | None:
    """ "ok", "failed" (raised, or ended without a result), or None while it may still run."""
    if job.paths.result_pickle.exists():
        try:
            job.result()
        except Exception:
            return "failed"
        return "ok"
    if str(job.job_id) in still_queued:
        return None
    # just ended: its result file may trail squeue by a moment on a shared filesystem
    time.sleep(POLL_SECONDS)
    return None if job.paths.result_pickle.exists() else "failed"


def wait_for_jobs(named: list[tuple[str, Any]], after_failure: str = "") -> list[Any]:
    """Wait for every job (name, submitit job); the first that fails is one line naming its
    log, `after_failure` appended. Returns the jobs' results in order."""
    while True:
        still = queued([str(job.job_id) for _, job in named])
        if still is None:
            time.sleep(POLL_SECONDS)
            continue
        outcomes = [_outcome(job, still) for _, job in named]
        for (name, job), outcome in zip(named, outcomes, strict=True):
            if outcome == "failed":
                raise UserError(
                    f"{name}: job {job.job_id} failed; its log: {job.paths.stderr}{after_failure}"
                )
        if all(outcome == "ok" for outcome in outcomes):
            return [job.result() for _, job in named]
        time.sleep(POLL_SECONDS)


def wait_for_training(
    fold_jobs: list[Any], folds: list[tuple[Any, int]], finish_job: Any
) -> dict[str, Any]:
    """Wait for the fold jobs, then the combine job. A failed fold: Slurm has cancelled the
    combine job (its dependency can no longer be met); we cancel it too, in case it has not."""
    named = [
        (f"{cfg.name} fold {fold}", job) for (cfg, fold), job in zip(folds, fold_jobs, strict=True)
    ]
    try:
        wait_for_jobs(
            named,
            f" (the combine job {finish_job.job_id} is cancelled; fix the cause and run the same "
            "command again: folds already done are kept)",
        )
    except UserError:
        subprocess.run(["scancel", str(finish_job.job_id)], capture_output=True, timeout=60)
        raise
    return wait_for_jobs([("the combine job", finish_job)])[0]
