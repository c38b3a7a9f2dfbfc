"""`LAUNCHER=slurm` against a real one-node Slurm cluster (tests/slurm/cluster.sh: Debian's
slurmctld, slurmd and munge on this machine): the job array and its dependent combine job,
a fold requeued while it trains, two tuning workers on PostgreSQL, a failing job, and the
settings Slurm refuses. Tiny data, timm's test_resnet, 1-2 epochs; every job writes its
files under the test's own tmp folder (jobs run as root here)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from kaggle_style.constants import ID_COL
from kaggle_style.task import CONSERVISION_CLASSES as CLASSES

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
VENV = Path(sys.executable).parents[1]
CLUSTER = REPO / "tests" / "slurm" / "cluster.sh"
PG_URL = os.environ.get(
    "KAGGLE_STYLE_TEST_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
)
# The demo set's recipes, shrunk to test size: timm's test model, one epoch of two steps.
SMALL = "backbone=test_resnet epochs=1 max_steps_per_epoch=2"


@pytest.fixture(scope="session")
def slurm_cluster() -> str:
    """The one-node cluster, started here when it is not up (left running for the session's
    other tests; `tests/slurm/cluster.sh stop` stops it). Without Slurm's binaries the tests
    skip, except under CI=true, where `.ci/run` installs them and a skip would hide a gap."""
    missing = [b for b in ("slurmctld", "slurmd", "sbatch", "munged") if not shutil.which(b)]
    if missing or os.geteuid() != 0:
        why = (
            f"Slurm is not installed here ({', '.join(missing)} missing; as root: "
            "tests/slurm/cluster.sh install)"
            if missing
            else "the one-node Slurm cluster needs root to start its daemons"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true: {why}")
        pytest.skip(why)
    started = subprocess.run([str(CLUSTER), "start"], capture_output=True, text=True, timeout=120)
    if started.returncode != 0:
        pytest.fail(f"tests/slurm/cluster.sh start: {started.stderr.strip()}")
    return "debug"


def make(*args: str, **variables: str) -> subprocess.CompletedProcess:
    command = ["make", "-C", str(REPO), *args, *(f"{k}={v}" for k, v in variables.items())]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def pipeline(data: Path, out: Path) -> dict[str, str]:
    """make's variables for tiny data in `out`; folds (2) and crops made once."""
    stamp = out / "installed"
    out.mkdir(parents=True, exist_ok=True)
    stamp.touch()
    variables = {
        "DATA": str(data),
        "OUT": str(out),
        "N_SPLITS": "2",
        "VENV": str(VENV),
        "STAMP": str(stamp),
        "DETECTIONS": str(data / "detections.json"),
    }
    done = make("-s", "folds", "crops", **variables)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return variables


def job_state(job_id: str) -> str:
    shown = subprocess.run(
        ["scontrol", "show", "job", job_id], capture_output=True, text=True, timeout=60
    ).stdout
    found = re.search(r"JobState=(\w+)", shown)
    return found.group(1) if found else ""


def assert_same_predictions(a: Path, b: Path) -> None:
    for name in ("oof.csv", "test.csv"):
        left = pd.read_csv(a / name, dtype={ID_COL: str}).set_index(ID_COL).sort_index()
        right = pd.read_csv(b / name, dtype={ID_COL: str}).set_index(ID_COL).sort_index()
        assert list(left.index) == list(right.index), name
        np.testing.assert_allclose(left[list(CLASSES)], right[list(CLASSES)], rtol=0, atol=1e-6)


@pytest.mark.heavy
def test_make_train_on_slurm_is_one_array_and_a_combine_job_equal_to_a_local_run(
    slurm_cluster: str, tiny_data: Path, tmp_path: Path
) -> None:
    variables = pipeline(tiny_data, tmp_path)
    slurm = make(
        "train",
        "SET=demo",
        "LAUNCHER=slurm",
        "GPUS_PER_JOB=0",
        "WAIT=1",
        f"TRAIN_ARGS={SMALL}",
        f"RUNS={tmp_path / 'slurm_runs'}",
        **variables,
    )
    assert slurm.returncode == 0, slurm.stdout[-3000:] + slurm.stderr[-3000:]
    tasks = re.findall(r"^(demo-\w+) fold (\d): job (\d+)_(\d+)$", slurm.stdout, flags=re.M)
    assert sorted((m, int(f)) for m, f, _, _ in tasks) == [
        ("demo-crop", 0),
        ("demo-crop", 1),
        ("demo-full", 0),
        ("demo-full", 1),
    ]
    arrays = {array for _, _, array, _ in tasks}
    assert len(arrays) == 1 and sorted(int(t) for *_, t in tasks) == [0, 1, 2, 3]
    (combine,) = re.findall(r"combined by job (\d+) once", slurm.stdout)
    script = (tmp_path / "slurm" / combine / f"{combine}_submission.sh").read_text()
    assert f"--dependency=afterok:{arrays.pop()}" in script and "--kill-on-invalid-dep" in script
    # its result is written a moment before the job ends
    wait_until(lambda: job_state(combine) == "COMPLETED", "the combine job to complete", 60)
    for name in ("demo-crop", "demo-full"):
        assert (tmp_path / "slurm_runs" / name / "oof.csv").is_file()
    local = make(
        "train", "SET=demo", f"TRAIN_ARGS={SMALL}", f"RUNS={tmp_path / 'runs'}", **variables
    )
    assert local.returncode == 0, local.stdout[-3000:] + local.stderr[-3000:]
    for name in ("demo-crop", "demo-full"):
        assert_same_predictions(tmp_path / "slurm_runs" / name, tmp_path / "runs" / name)
    again = make(
        "train",
        "SET=demo",
        "LAUNCHER=slurm",
        "GPUS_PER_JOB=0",
        f"TRAIN_ARGS={SMALL}",
        f"RUNS={tmp_path / 'slurm_runs'}",
        **variables,
    )
    assert again.returncode == 0 and "nothing to submit" in again.stdout


class PauseAfterFirstEpoch:
    """The epoch callback of the fold to requeue: after its first checkpoint, say so and wait
    to be requeued (only the first attempt, only array task 0)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __call__(self, fold: int, epoch: int, loss: float) -> None:
        if os.environ.get("SLURM_ARRAY_TASK_ID") == "0" and epoch == 0 and not self.marker.exists():
            self.marker.write_text(os.environ.get("SLURM_JOB_ID", ""))
            time.sleep(300)


def wait_until(check: Callable[[], bool], what: str, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def two_folds(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from kaggle_style.data.folds import make_folds
    from kaggle_style.data.tables import load_competition_data
    from kaggle_style.files import write_csv

    out = tmp_path_factory.mktemp("folds2") / "folds.csv"
    write_csv(out, make_folds(load_competition_data(tiny_data).train, n_splits=2, seed=0))
    return out


@pytest.mark.heavy
def test_a_fold_requeued_while_it_trains_resumes_and_predicts_as_if_uninterrupted(
    slurm_cluster: str,
    tiny_data: Path,
    two_folds: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kaggle_style.config import resolve_config
    from kaggle_style.launch.scheduler import wait_for_training
    from kaggle_style.launch.settings import SlurmSettings
    from kaggle_style.launch.slurm import submit_training
    from kaggle_style.training.config import TrainConfig
    from kaggle_style.training.run import run_training

    # the job unpickles the callback from this module: let it import it
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), str(REPO / "tests")]))

    def recipe(name: str) -> TrainConfig:
        return resolve_config(
            TrainConfig,
            REPO / "configs" / "tiny-cpu.yaml",
            {"epochs": 2, "max_steps_per_epoch": 2},
            name=name,
            data=str(tiny_data),
            folds_file=str(two_folds),
            runs_dir=str(tmp_path / "runs"),
            cache_dir=str(tmp_path / "cache"),
            progress=False,
        )

    settings = SlurmSettings(gpus_per_job=0, time_min=20, folder=str(tmp_path / "slurm" / "%j"))
    marker = tmp_path / "first_checkpoint"
    hook = PauseAfterFirstEpoch(marker)
    requeued = submit_training([recipe("requeued")], settings, on_epoch_end=hook)
    run_training(recipe("plain"))  # the uninterrupted run, here meanwhile (one process less)
    job = requeued.fold_jobs[0]  # fold 0, array task 0: the one the callback pauses
    checkpoints = tmp_path / "runs" / "requeued" / "fold0" / "checkpoints"
    wait_until(marker.exists, "the fold's first checkpoint")
    assert any(checkpoints.iterdir())
    subprocess.run(["scontrol", "requeue", str(job.job_id)], check=True, timeout=60)
    wait_until(lambda: job_state(str(job.job_id)) == "PENDING", "the requeued job to pend")
    # Slurm holds a requeued job back for two minutes; the test does not wait them out
    subprocess.run(["scontrol", "update", f"jobid={job.job_id}", "StartTime=now"], check=True)
    wait_for_training(requeued.fold_jobs, requeued.plan.folds, requeued.finish_job)
    log = job.paths.stdout.read_text()
    assert log.count("Starting with JobEnvironment") == 2
    assert "fold 0: resumed after epoch 1" in log
    assert (
        "Restarts=1"
        in subprocess.run(
            ["scontrol", "show", "job", str(job.job_id)], capture_output=True, text=True
        ).stdout
    )
    assert_same_predictions(tmp_path / "runs" / "requeued", tmp_path / "runs" / "plain")


@pytest.mark.heavy
@pytest.mark.postgres
def test_make_tune_on_slurm_runs_two_workers_as_two_jobs_sharing_the_trials(
    slurm_cluster: str, tiny_data: Path, tmp_path: Path
) -> None:
    import optuna

    variables = pipeline(tiny_data, tmp_path)
    config = yaml.safe_load((REPO / "configs" / "tiny-cpu.yaml").read_text())
    config.update(
        epochs=1,
        max_steps_per_epoch=2,
        search_space={"lr": {"type": "float", "low": 5e-4, "high": 1e-2, "log": True}},
    )
    (tmp_path / "tune.yaml").write_text(yaml.safe_dump(config))
    study = f"slurm_{uuid.uuid4().hex[:12]}"
    try:
        tuned = make(
            "tune",
            "LAUNCHER=slurm",
            "WORKERS=2",
            "TRIALS=2",
            "GPUS_PER_JOB=0",
            "WAIT=1",
            f"CONFIG={tmp_path / 'tune.yaml'}",
            f"STUDY={study}",
            f"STORAGE={PG_URL}",
            **variables,
        )
        assert tuned.returncode == 0, tuned.stdout[-3000:] + tuned.stderr[-3000:]
        jobs = re.findall(r"^tune worker (\d) of study .*: job (\d+)_(\d+)$", tuned.stdout, re.M)
        assert [w for w, _, _ in jobs] == ["0", "1"] and len({a for _, a, _ in jobs}) == 1
        trials = optuna.load_study(study_name=study, storage=PG_URL).trials
        assert sorted(t.number for t in trials) == [0, 1, 2, 3]  # every number once
        assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
        workers = {t.user_attrs["worker"] for t in trials}
        assert len(workers) == 2  # two processes: the two jobs
    finally:
        optuna.delete_study(study_name=study, storage=PG_URL)


@pytest.mark.heavy
def test_a_failing_fold_job_cancels_the_combine_job_and_names_its_log(
    slurm_cluster: str, tiny_data: Path, tiny_folds: Path, tmp_path: Path
) -> None:
    config = yaml.safe_load((REPO / "configs" / "tiny-cpu.yaml").read_text())
    config["backbone"] = "no_such_network"  # accepted by the config, refused by timm in the job
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [
            str(VENV / "bin" / "kaggle-style"),
            "slurm-train",
            "--config",
            str(tmp_path / "bad.yaml"),
            "--data",
            str(tiny_data),
            "--folds-file",
            str(tiny_folds),
            "--runs-dir",
            str(tmp_path / "runs"),
            "--set",
            "max_steps_per_epoch=2",
            f"cache_dir={tmp_path / 'cache'}",
            "--gpus-per-job",
            "0",
            "--folder",
            str(tmp_path / "slurm" / "%j"),
            "--wait",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    err = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(err) == 1, result.stdout + result.stderr
    (combine,) = re.findall(r"combined by job (\d+) once", result.stdout)
    named = re.search(r"job (\d+_\d) failed; its log: (\S+\.err)", err[0])
    assert named and "no_such_network" in Path(named.group(2)).read_text()
    assert f"combine job {combine} is cancelled" in err[0]
    wait_until(lambda: job_state(combine) == "CANCELLED", "the combine job's cancellation", 60)
    assert not (tmp_path / "runs" / "bad" / "oof.csv").exists()


@pytest.mark.parametrize(
    ("args", "path", "expected"),
    [
        (["--partition", "no_such_partition"], None, "partition no_such_partition"),
        ([], "an empty folder", "no `sbatch` on PATH"),
    ],
)
def test_a_bad_slurm_setting_is_one_line_naming_it(
    slurm_cluster: str,
    tiny_data: Path,
    tiny_folds: Path,
    tmp_path: Path,
    args: list[str],
    path: str | None,
    expected: str,
) -> None:
    env = None
    if path:  # a PATH without Slurm's commands
        (tmp_path / "bin").mkdir()
        env = {**os.environ, "PATH": str(tmp_path / "bin")}
    result = subprocess.run(
        [
            str(VENV / "bin" / "kaggle-style"),
            "slurm-train",
            "--config",
            str(REPO / "configs" / "tiny-cpu.yaml"),
            "--data",
            str(tiny_data),
            "--folds-file",
            str(tiny_folds),
            "--runs-dir",
            str(tmp_path / "runs"),
            "--gpus-per-job",
            "0",
            "--folder",
            str(tmp_path / "slurm" / "%j"),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    err = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(err) == 1, result.stdout + result.stderr
    assert expected in err[0]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.csv"))
