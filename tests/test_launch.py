"""Slurm through submitit: the sbatch scripts it writes for what the tests' one-node cluster
cannot show (GPUs, partitions, memory; tests/test_slurm_cluster.py runs the real jobs), and a
requeue through submitit's own checkpoint() with its local executor (real processes)."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest

from kaggle_style.config import resolve_config
from kaggle_style.constants import OOF_FILE
from kaggle_style.launch.jobs import with_values
from kaggle_style.launch.settings import SlurmSettings
from kaggle_style.launch.slurm import plan_training, submit_training
from kaggle_style.run_contract import DONE_FILE, check_run
from kaggle_style.training.config import TrainConfig, model_hash

TINY = Path(__file__).resolve().parents[1] / "configs" / "tiny-cpu.yaml"


@pytest.fixture(scope="module")
def two_folds(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from kaggle_style.data.folds import make_folds
    from kaggle_style.data.tables import load_competition_data
    from kaggle_style.files import write_csv

    out = tmp_path_factory.mktemp("folds2") / "folds.csv"
    write_csv(out, make_folds(load_competition_data(tiny_data).train, n_splits=2, seed=0))
    return out


def recipe(name: str, data: Path, folds: Path, runs: Path, **changes) -> TrainConfig:
    return resolve_config(
        TrainConfig,
        TINY,
        {"num_workers": 0, **changes},
        name=name,
        data=str(data),
        folds_file=str(folds),
        runs_dir=str(runs),
        cache_dir=str(runs.parent / "cache"),
        progress=False,
    )


@pytest.fixture
def fake_slurm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`srun` and `sbatch` stand-ins: sbatch keeps each script and answers with a new job id."""
    bin_dir, kept = tmp_path / "bin", tmp_path / "sbatch"
    bin_dir.mkdir()
    kept.mkdir()
    scripts = {
        "srun": "#!/bin/sh\nexit 0\n",
        "sbatch": f'#!/bin/sh\nn=$(ls {kept} | wc -l)\ncp "$1" {kept}/$n.sh\n'
        'echo "Submitted batch job $((4242 + n))"\n',
    }
    for name, text in scripts.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return kept


def sbatch_flags(script: str) -> dict[str, str]:
    return dict(re.findall(r"^#SBATCH --([\w-]+)(?:=(.*))?$", script, flags=re.M))


def test_sbatch_scripts_array_resources_and_dependency(
    fake_slurm: Path, tiny_data: Path, two_folds: Path, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    cfgs = [recipe(n, tiny_data, two_folds, runs) for n in ("a", "b")]
    # fold 0 of `a` is done under its config: it must not be submitted again
    fold0 = runs / "a" / "fold0"
    fold0.mkdir(parents=True)
    (fold0 / OOF_FILE).write_text("id\n")
    (fold0 / DONE_FILE).write_text(json.dumps({"model_hash": model_hash(cfgs[0])}))
    settings = SlurmSettings(
        partition="gpu-h100",
        gpus_per_job=2,
        time_min=90,
        mem_gb=64,
        folder=str(tmp_path / "slurm" / "%j"),
    )
    submitted = submit_training(cfgs, settings)
    assert [(c.name, f) for c, f in submitted.plan.folds] == [("a", 1), ("b", 0), ("b", 1)]
    array, finish = (sbatch_flags((fake_slurm / f"{i}.sh").read_text()) for i in (0, 1))
    assert array["array"] == "0-2%3"  # three tasks, all allowed at once
    assert (array["partition"], array["gpus-per-node"], array["time"], array["mem"]) == (
        "gpu-h100",
        "2",
        "90",
        "64GB",
    )
    assert "requeue" in array and array["signal"] == "USR2@120"
    assert finish["dependency"] == "afterok:4242" and finish["kill-on-invalid-dep"] == "yes"
    assert "array" not in finish and "gpus-per-node" not in finish
    assert [j.job_id for j in submitted.fold_jobs] == ["4242_0", "4242_1", "4242_2"]


def test_plan_skips_a_complete_run_and_refuses_a_missing_folds_file(
    tiny_data: Path, two_folds: Path, tmp_path: Path
) -> None:
    from kaggle_style.errors import UserError

    missing = recipe("a", tiny_data, tmp_path / "nope.csv", tmp_path / "runs")
    with pytest.raises(UserError, match="no folds file"):
        plan_training([missing])
    fresh = plan_training([recipe("a", tiny_data, two_folds, tmp_path / "runs")])
    assert [f for _, f in fresh.folds] == [0, 1] and [c.name for c in fresh.finish] == ["a"]


@pytest.mark.heavy
def test_local_executor_requeues_a_preempted_fold_and_resumes_it(
    tiny_data: Path, two_folds: Path, tmp_path: Path
) -> None:
    """Fold 0 is preempted (submitit's signal) after its first epoch: submitit requeues it, the
    new process resumes from the checkpoint, and the dependent job combines the run."""
    runs = tmp_path / "runs"
    cfg = recipe("tiny", tiny_data, two_folds, runs, epochs=3, max_steps_per_epoch=2)
    preempted = tmp_path / "preempted"

    def preempt_once(fold: int, epoch: int, loss: float) -> None:
        import signal
        import time

        import submitit

        if fold == 0 and epoch == 0 and not preempted.exists():
            preempted.write_text(str(os.getpid()))
            os.kill(os.getpid(), submitit.JobEnvironment._usr_sig())
            time.sleep(60)  # the handler checkpoints, requeues and exits during this sleep
            raise AssertionError(f"not preempted ({signal.Signals})")

    from kaggle_style.training.run import run_training

    run_training(with_values(cfg, folds=[1]))  # here, to spare the machine one more process
    settings = SlurmSettings(launcher="local", folder=str(tmp_path / "jobs" / "%j"))
    submitted = submit_training([cfg], settings, on_epoch_end=preempt_once)
    assert [f for _, f in submitted.plan.folds] == [0]
    overall = submitted.finish_job.result()
    assert set(overall) == {"tiny"} and overall["tiny"]["n"] == 96
    log = submitted.fold_jobs[0].stdout()
    assert "this job is preempted" in submitted.fold_jobs[0].stderr()
    assert "fold 0: resumed after epoch 1" in log
    first_pid = int(preempted.read_text())
    assert first_pid != os.getpid()  # it ran in a process of its own
    done = json.loads((runs / "tiny" / "fold0" / DONE_FILE).read_text())
    assert len(done["history"]) == 3  # epoch 1 from the checkpoint, epochs 2-3 after the requeue
    check_run(runs / "tiny")  # complete, one config, combined after every fold
    again = submit_training([cfg], settings)
    assert again.fold_jobs == [] and again.finish_job is None


def test_tuning_workers_are_one_array_on_the_shared_storage(
    fake_slurm: Path, tmp_path: Path
) -> None:
    from kaggle_style.launch.slurm import submit_tuning
    from kaggle_style.tuning.config import TuneConfig

    url = "postgresql+psycopg2://me@db/optuna"
    workers = [TuneConfig(study="s", storage=url, config=TINY, sampler_seed=i) for i in range(4)]
    jobs = submit_tuning(workers, SlurmSettings(partition="gpu", folder=str(tmp_path / "%j")))
    (script,) = fake_slurm.glob("*.sh")
    flags = sbatch_flags(script.read_text())
    assert flags["array"] == "0-3%4" and flags["partition"] == "gpu"
    assert [j.job_id for j in jobs] == [f"4242_{i}" for i in range(4)]
    seeds = [job.submission().function.tune_cfg.sampler_seed for job in jobs]
    assert seeds == [0, 1, 2, 3]  # each worker samples its own way; the storage is one
