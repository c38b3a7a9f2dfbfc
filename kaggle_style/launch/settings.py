"""The cluster's knobs: partition, GPUs, time and memory per job, where submitit keeps its files.

Defaults < a small YAML (`--slurm-config slurm.yaml`) < `--set` < flags, as every config here.
"""

from __future__ import annotations

from dataclasses import field
from typing import TYPE_CHECKING, Any, Literal

from kaggle_style.config import Count, Whole, stage_config

if TYPE_CHECKING:
    import submitit

Launcher = Literal["slurm", "local"]


@stage_config
class SlurmSettings:
    """One job per (recipe, fold); `local` runs the same jobs as processes here (tests, trials)."""

    launcher: Launcher = "slurm"
    """local: submitit's local executor (processes on this box)"""
    partition: str | None = None
    """Slurm partition"""
    gpus_per_job: Whole = 1
    """GPUs per job (above 1: the fold runs under `accelerate launch --multi_gpu`)"""
    cpus_per_task: Count | None = None
    """CPU cores per job"""
    time_min: Count = 240
    """minutes per job; one that reaches it is checkpointed and requeued"""
    mem_gb: Count | None = None
    """GB of memory per job"""
    account: str | None = None
    """Slurm account"""
    qos: str | None = None
    """Slurm quality of service"""
    constraint: str | None = None
    """Slurm node constraint (features)"""
    max_requeues: Whole = 3
    """timeouts and preemptions a job survives (submitit's max_num_timeout)"""
    array_parallelism: Count = 64
    """tasks of the array running at once"""
    folder: str = "slurm/%j"
    """submitit's logs and pickles; must be on the shared filesystem"""
    setup: list[str] = field(default_factory=list)
    """shell lines run before each job"""
    sbatch: dict[str, Any] = field(default_factory=dict)
    """any other `#SBATCH --key=value`"""

    def executor_sbatch(self) -> dict[str, Any]:
        """The `#SBATCH` keys submitit has no parameter for: requeue, then the user's own."""
        return {"requeue": True, **self.sbatch}

    def executor(self, name: str, folder: str | None = None) -> submitit.Executor:
        """A submitit executor with these settings (LocalExecutor for `local`)."""
        import submitit

        folder = folder or self.folder
        if self.launcher == "local":
            local = submitit.LocalExecutor(folder, max_num_timeout=self.max_requeues)
            local.update_parameters(timeout_min=self.time_min, gpus_per_node=self.gpus_per_job)
            return local
        executor = submitit.SlurmExecutor(folder, max_num_timeout=self.max_requeues)
        params: dict[str, Any] = {
            "job_name": name,
            "time": self.time_min,
            "ntasks_per_node": 1,
            "array_parallelism": self.array_parallelism,
            "signal_delay_s": 120,
            "setup": list(self.setup),
            "additional_parameters": self.executor_sbatch(),
        }
        optional = {
            "partition": self.partition,
            "gpus_per_node": self.gpus_per_job or None,
            "cpus_per_task": self.cpus_per_task,
            "mem": None if self.mem_gb is None else f"{self.mem_gb}GB",
            "account": self.account,
            "qos": self.qos,
            "constraint": self.constraint,
        }
        params.update({k: v for k, v in optional.items() if v is not None})
        executor.update_parameters(**params)
        return executor
