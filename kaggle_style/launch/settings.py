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
    partition: str | None = None
    gpus_per_job: Whole = 1  # above 1: the fold runs under `accelerate launch --multi_gpu`
    cpus_per_task: Count | None = None
    time_min: Count = 240  # a job that reaches it is checkpointed and requeued (max_requeues times)
    mem_gb: Count | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    max_requeues: Whole = 3  # timeouts and preemptions a job survives (submitit's max_num_timeout)
    array_parallelism: Count = 64  # tasks of the array running at once
    folder: str = "slurm/%j"  # submitit's logs and pickles; must be on the shared filesystem
    setup: list[str] = field(default_factory=list)  # shell lines run before each job
    sbatch: dict[str, Any] = field(default_factory=dict)  # any other `#SBATCH --key=value`

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
            "additional_parameters": {"requeue": True, **self.sbatch},
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
