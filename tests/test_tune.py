"""Optuna tuning: search-space checks, studies on SQLite, journal files and PostgreSQL shared by
worker processes, a killed worker's trial retried, pruning, and export back to a train config."""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from kaggle_style.cli import main
from kaggle_style.config import ConfigError, resolve_config
from kaggle_style.training.config import TrainConfig
from kaggle_style.training.run import run_training
from kaggle_style.tuning.config import TuneConfig
from kaggle_style.tuning.distributed import process_rank, share_from_main
from kaggle_style.tuning.objective import synthetic_training, trial_name
from kaggle_style.tuning.space import (
    default_params,
    epoch_stride,
    parse_search_space,
    sample,
    trial_config,
)
from kaggle_style.tuning.study import default_storage, masked, open_storage

PG_URL = os.environ.get(
    "KAGGLE_STYLE_TEST_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
)
SPACE = {
    "lr": {"type": "float", "low": 5e-4, "high": 1e-2, "log": True},
    "label_smoothing": {"type": "float", "low": 0.0, "high": 0.15},
}
States = optuna.trial.TrialState


REPO = Path(__file__).resolve().parents[1]


def write_config(path: Path, data: Path, folds: Path, tmp: Path, **kw: Any) -> Path:
    """The shipped smoke recipe (configs/tiny-cpu.yaml) shrunk further, tuned on fold 0."""
    cfg = yaml.safe_load((REPO / "configs" / "tiny-cpu.yaml").read_text())
    cfg.update(
        data=str(data),
        folds_file=str(folds),
        runs_dir=str(tmp / "runs"),
        cache_dir=str(tmp / "cache"),
        epochs=2,
        progress=False,
        folds=[0],
        search_space=SPACE,
    )
    cfg.update(kw)
    path.write_text(yaml.safe_dump(cfg))
    return path


def worker(config: Path, study: str, storage: str, *args: str, cwd: Path) -> subprocess.Popen:
    """`python -m kaggle_style tune` as its own process, as on another box."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "kaggle_style",
        "tune",
        "--config",
        str(config),
        "--study",
        study,
        "--storage",
        storage,
        "--quiet",
        *args,
    ]
    return subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def finish(procs: list[subprocess.Popen], timeout: float = 240) -> list[str]:
    outs = [p.communicate(timeout=timeout)[0] for p in procs]
    for p, out in zip(procs, outs, strict=True):
        assert p.returncode == 0, out[-3000:]
    return outs


def trials_by_worker(study: optuna.Study) -> dict[int, list[int]]:
    """Trial numbers per worker pid, from the `worker` user attr each trial records."""
    out: dict[int, list[int]] = {}
    for t in study.trials:
        out.setdefault(int(t.user_attrs["worker"].rsplit(":", 1)[1]), []).append(t.number)
    return out


def finished_in_log(log: str) -> set[int]:
    return {
        int(line.split()[1])
        for line in log.splitlines()
        if line.startswith("trial ") and " finished: " in line
    }


# --------------------------------------------------------------------------------------------
# search space and helpers


def test_search_space_is_checked_against_train_config() -> None:
    space = parse_search_space(
        {
            **SPACE,
            "image_size": {"type": "categorical", "choices": [64, 96]},
            "epochs": {"type": "int", "low": 1, "high": 4},
        }
    )
    assert space["lr"].log and space["image_size"].choices == (64, 96)
    cases = {
        "learning_rate": ({"type": "float", "low": 0.1, "high": 1}, "not a TrainConfig field"),
        "name": ({"type": "categorical", "choices": ["a"]}, "cannot be tuned"),
        "epochs": ({"type": "float", "low": 1, "high": 3}, "field is an integer"),
        "lr": ({"type": "float", "low": 0, "high": 1, "log": True}, "low > 0 for log"),
        "weight_decay": ({"type": "float", "low": 0.1}, "needs low and high"),
        "augment": ({"type": "categorical", "choices": []}, "non-empty list"),
        "dropout": ("0.1", "not a TrainConfig field"),
        "drop_rate": ({"type": "uniform", "low": 0, "high": 1}, "type: float, int or categorical"),
        "batch_size": ({"type": "int", "low": 8, "high": 32, "stepp": 8}, "unknown key"),
        "tta_hflip": ({"type": "categorical", "choices": [1, 2]}, "expected true or false"),
    }
    for key, (spec, message) in cases.items():
        with pytest.raises(ConfigError, match=message):
            parse_search_space({key: spec})
    with pytest.raises(ConfigError, match="nothing to tune"):
        parse_search_space({})


def test_first_trial_values_must_lie_in_the_space() -> None:
    space = parse_search_space(
        {**SPACE, "image_size": {"type": "categorical", "choices": [48, 64]}}
    )
    cfg = TrainConfig(lr=3e-3, image_size=48)
    assert default_params(cfg, space) == {"lr": 3e-3, "label_smoothing": 0.0, "image_size": 48}
    with pytest.raises(ConfigError, match=r"search_space.lr: the config's value 0.1 lies outside"):
        default_params(TrainConfig(lr=0.1, image_size=48), space)
    with pytest.raises(ConfigError, match="image_size: the config's value None"):
        default_params(TrainConfig(lr=3e-3), space)
    trial = trial_config(cfg, {"lr": 1e-3, "image_size": 64}, "s-t3")
    assert (trial.lr, trial.image_size, trial.name, trial.backbone) == (
        1e-3,
        64,
        "s-t3",
        cfg.backbone,
    )


def test_report_steps_are_unique_across_folds_whatever_epochs_a_trial_has() -> None:
    space = parse_search_space({"epochs": {"type": "int", "low": 1, "high": 5}})
    assert epoch_stride(TrainConfig(epochs=3), space) == 5
    assert epoch_stride(TrainConfig(epochs=7), parse_search_space(SPACE)) == 7
    steps: list[int] = []
    cfg = TrainConfig(epochs=3, folds=[0, 1, 2], lr=1e-3)
    synthetic_training(cfg, lambda f, e, v: steps.append(f * 5 + e), parse_search_space(SPACE))
    assert len(steps) == len(set(steps)) == 9


def test_space_edges_are_checked_on_the_recipe_they_will_run_with() -> None:
    """warmup_epochs up to 5 fits a 10-epoch recipe but not TrainConfig's default 3 epochs: the
    check uses the recipe, and a misfit names the value."""
    space = {"warmup_epochs": {"type": "float", "low": 0.0, "high": 5.0}}
    with pytest.raises(ConfigError, match=r"search_space.warmup_epochs: the value 5.0 does not"):
        parse_search_space(space)
    base = TrainConfig(epochs=10)
    params = parse_search_space(space, base)
    fixed = optuna.trial.FixedTrial({"warmup_epochs": 5.0})
    assert trial_config(base, sample(params, fixed), "x").warmup_epochs == 5.0


def test_one_name_cleaning_for_storage_trials_and_export() -> None:
    """A study name with spaces and slashes becomes one safe stem everywhere it is used."""
    name = "convnext L/384 v2"
    assert default_storage(name) == "sqlite:///studies/convnext_L_384_v2.db"
    assert trial_name(name, 7) == "convnext_L_384_v2-t7"


def test_tune_config_is_checked_before_any_work() -> None:
    assert TuneConfig(study="s").pruner == "median"
    cases = {
        "study": ({"study": " "}, "study: ' ' is only spaces"),
        "pruner": ({"pruner": "sha"}, "pruner: 'sha' is not one of 'median', 'hyperband', 'none'"),
        "objective": ({"objective": "fake"}, "objective: 'fake' is not one of"),
        "n_trials": ({"n_trials": 0}, "n_trials: 0 is out of range; it must be at least 1"),
        "timeout": ({"timeout": -1.0}, "timeout: -1.0 is out of range"),
        "grace": ({"grace_period": 0}, "grace_period: 0 is out of range"),
        "retry": ({"max_retry": -1}, "max_retry: -1 is out of range"),
        "seconds": ({"synthetic_seconds": float("nan")}, "synthetic_seconds: nan is out of range"),
    }
    for values, message in cases.values():
        with pytest.raises(ConfigError, match=message):
            TuneConfig(**{"study": "s", **values})


def test_param_sharing_is_identity_for_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """World size 1 (a plain process): no process group is touched. Several ranks are covered by
    the `accelerate launch --cpu` test below."""
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert process_rank() == (0, 1)
    payload = (3, {"lr": 1e-3, "image_size": 64})
    assert share_from_main(payload, 1) is payload
    import torch.distributed as dist

    assert not dist.is_initialized()


def test_storage_urls_are_logged_without_passwords(tmp_path: Path) -> None:
    assert (
        masked("postgresql+psycopg2://me:s3cret@db.example/optuna")
        == "postgresql+psycopg2://me:***@db.example/optuna"
    )
    assert "s3cret" not in masked("mysql+pymysql://u:s3cret@h/db")
    storage = open_storage(f"journal://{tmp_path}/deep/dir/s.log")
    assert isinstance(storage, optuna.storages.JournalStorage)
    assert (tmp_path / "deep" / "dir" / "s.log").exists()


def test_cli_errors_are_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    config = write_config(
        tmp_path / "t.yaml",
        tmp_path,
        tmp_path,
        tmp_path,
        search_space={"learning_rate": {"type": "float", "low": 0, "high": 1}},
    )
    assert main(["tune", "--config", str(config), "--study", "s", "--n-trials", "1"]) == 2
    assert (
        "tune: error: search_space.learning_rate: not a TrainConfig field"
        in capsys.readouterr().err
    )
    assert not (tmp_path / "studies").exists(), "nothing is created for a bad config"
    assert main(["tune-export", "--study", "nope", "--out", "x.yaml"]) == 2
    assert "no study file studies/nope.db" in capsys.readouterr().err
    journal = f"journal://{tmp_path}/j.log"
    assert main(["tune-export", "--study", "nope", "--storage", journal, "--out", "x.yaml"]) == 2
    assert "no study 'nope' in journal://" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# SQLite: a real study on tiny data, exported and retrained


@pytest.mark.heavy
def test_sqlite_study_then_export_reproduces_the_best_trial(
    tiny_data: Path, tiny_folds: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the default storage is sqlite:///studies/NAME.db
    config = write_config(tmp_path / "tune.yaml", tiny_data, tiny_folds, tmp_path)
    assert (
        main(
            [
                "tune",
                "--config",
                str(config),
                "--study",
                "tiny",
                "--n-trials",
                "3",
                "--pruner",
                "none",
                "--sampler-seed",
                "0",
                "--quiet",
            ]
        )
        == 0
    )
    url = "sqlite:///studies/tiny.db"
    study = optuna.load_study(study_name="tiny", storage=url)
    trials = study.trials
    assert [t.state for t in trials] == [States.COMPLETE] * 3
    assert trials[0].params == {"lr": 3e-3, "label_smoothing": 0.0}
    assert trials[0].user_attrs["defaults"] is True
    assert trials[1].params != trials[0].params
    for t in trials:  # value = the OOF log loss the trainer wrote for the trial's own run
        done = json.loads((Path(t.user_attrs["run_dir"]) / "fold0" / "done.json").read_text())
        assert t.value == pytest.approx(done["scores"]["log_loss"], abs=1e-12)
        assert sorted(t.intermediate_values) == [0, 1]
    assert study.user_attrs["search_space"] == SPACE

    out = tmp_path / "configs" / "tiny.best.yaml"
    assert main(["tune-export", "--study", "tiny", "--storage", url, "--out", str(out)]) == 0
    text = out.read_text()
    best = study.best_trial
    assert f"# best trial: {best.number}  value (OOF log loss): {best.value!r}  folds: [0]" in text
    assert "search_space" not in text
    cfg = resolve_config(TrainConfig, out)
    assert cfg.name == "tiny-best" and cfg.folds is None
    assert (cfg.lr, cfg.label_smoothing) == (best.params["lr"], best.params["label_smoothing"])
    again = run_training(dataclasses.replace(cfg, folds=[0], runs_dir=str(tmp_path / "again")))
    assert again["trained_folds_log_loss"] == pytest.approx(best.value, abs=1e-6)


# --------------------------------------------------------------------------------------------
# journal file: two processes, no database


def test_two_processes_share_a_journal_file_study(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "tune.yaml", tmp_path / "nodata", tmp_path / "nofolds", tmp_path
    )
    url = f"journal://{tmp_path}/shared/study.log"
    args = [
        "--objective",
        "synthetic",
        "--synthetic-seconds",
        "0.2",
        "--n-trials",
        "3",
        "--pruner",
        "none",
    ]
    procs = [worker(config, "j", url, *args, cwd=tmp_path) for _ in range(2)]
    logs = finish(procs)
    study = optuna.load_study(study_name="j", storage=open_storage(url))
    assert len(study.trials) == 6
    assert all(
        t.state == States.COMPLETE and sorted(t.intermediate_values) == [0, 1] for t in study.trials
    )
    assert study.trials[0].params == {"lr": 3e-3, "label_smoothing": 0.0}
    by_worker = trials_by_worker(study)
    assert sorted(by_worker) == sorted(p.pid for p in procs)
    assert all(len(numbers) == 3 for numbers in by_worker.values())
    for p, log in zip(procs, logs, strict=True):
        assert finished_in_log(log) == set(by_worker[p.pid])


# --------------------------------------------------------------------------------------------
# PostgreSQL: several workers, a killed worker, pruning


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh database on the shared PostgreSQL server (so workers starting together also race
    to create Optuna's tables), dropped afterwards; the server's absence is a failure."""
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        engine.connect().close()
    except Exception as err:  # any connection error means the same thing here
        pytest.fail(
            f"PostgreSQL is not reachable at {masked(PG_URL)} ({type(err).__name__}); "
            "start it (pg_isready -h 127.0.0.1) or set KAGGLE_STYLE_TEST_PG"
        )
    name = f"kaggle_style_tune_{uuid.uuid4().hex[:10]}"
    with engine.connect() as conn:
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    try:
        yield (
            sqlalchemy.engine.make_url(PG_URL)
            .set(database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@pytest.fixture
def pg_study() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.mark.heavy
@pytest.mark.postgres
def test_three_worker_processes_share_a_postgres_study(
    pg_url: str, pg_study: str, tiny_data: Path, tiny_folds: Path, tmp_path: Path
) -> None:
    """Real tiny training in three processes: every trial is in the study once, with its value
    (the trainer's OOF log loss) and one intermediate value per epoch."""
    config = write_config(tmp_path / "tune.yaml", tiny_data, tiny_folds, tmp_path)
    procs = [
        worker(config, pg_study, pg_url, "--n-trials", "2", "--pruner", "none", cwd=tmp_path)
        for _ in range(3)
    ]
    logs = finish(procs)
    study = optuna.load_study(study_name=pg_study, storage=pg_url)
    trials = study.trials
    assert [t.number for t in trials] == list(range(6))
    assert trials[0].params == {"lr": 3e-3, "label_smoothing": 0.0}
    # three workers started together, one created the study: the defaults ran exactly once
    assert [t.number for t in trials if t.user_attrs.get("defaults")] == [0]
    by_worker = trials_by_worker(study)
    assert sorted(by_worker) == sorted(p.pid for p in procs)
    assert all(len(numbers) == 2 for numbers in by_worker.values())
    for p, log in zip(procs, logs, strict=True):
        assert finished_in_log(log) == set(by_worker[p.pid])
    assert len({t.user_attrs["run_dir"] for t in trials}) == 6
    for t in trials:
        assert t.state == States.COMPLETE
        assert sorted(t.intermediate_values) == [0, 1]
        done = json.loads((Path(t.user_attrs["run_dir"]) / "fold0" / "done.json").read_text())
        assert t.value == pytest.approx(done["scores"]["log_loss"], abs=1e-12)
        assert t.intermediate_values[1] == pytest.approx(done["history"][-1], abs=1e-12)


@pytest.mark.heavy
@pytest.mark.postgres
def test_killed_worker_trial_is_failed_retried_and_bad_trials_pruned(
    pg_url: str, pg_study: str, tmp_path: Path
) -> None:
    """SIGKILL mid-trial: the heartbeat marks the trial FAILED and the next worker retries its
    values; then trials worse than the median at their first epoch are PRUNED."""
    config = write_config(
        tmp_path / "tune.yaml", tmp_path / "nodata", tmp_path / "nofolds", tmp_path, epochs=20
    )
    common = ["--objective", "synthetic", "--heartbeat-interval", "1", "--grace-period", "2"]
    victim = worker(
        config,
        pg_study,
        pg_url,
        *common,
        "--synthetic-seconds",
        "1",
        "--n-trials",
        "1",
        cwd=tmp_path,
    )
    storage = open_storage(pg_url)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and victim.poll() is None:
        try:
            running = optuna.load_study(study_name=pg_study, storage=storage).trials
        except KeyError:
            running = []
        if running and running[0].intermediate_values:
            break
        time.sleep(0.2)
    assert victim.poll() is None, victim.communicate()[0][-3000:]
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    time.sleep(3.5)  # past the grace period since its last heartbeat
    study = optuna.load_study(study_name=pg_study, storage=storage)
    assert study.trials[0].state == States.RUNNING  # nobody has looked yet

    # the next worker fails the stale trial, retries its values, then samples one more
    rest = [
        str(config),
        "--study",
        pg_study,
        "--storage",
        pg_url,
        "--quiet",
        *common,
        "--pruner",
        "median",
        "--pruner-startup-trials",
        "2",
    ]
    assert main(["tune", "--config", *rest, "--n-trials", "2"]) == 0
    trials = optuna.load_study(study_name=pg_study, storage=storage).trials
    assert [t.state for t in trials] == [States.FAIL, States.COMPLETE, States.COMPLETE]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retried = optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(trials[1])
    assert retried == 0 and trials[1].params == trials[0].params
    assert len(trials[1].intermediate_values) == 20 and trials[0].intermediate_values

    # two clearly worse trials, queued: both stop at their first report
    study = optuna.load_study(study_name=pg_study, storage=storage)
    bad = {"lr": 1e-2, "label_smoothing": 0.15}
    for _ in range(2):
        study.enqueue_trial(bad)
    assert main(["tune", "--config", *rest, "--n-trials", "2"]) == 0
    trials = optuna.load_study(study_name=pg_study, storage=storage).trials
    assert [t.state for t in trials[3:]] == [States.PRUNED, States.PRUNED]
    for t in trials[3:]:
        assert t.params == bad and list(t.intermediate_values) == [0]
        assert t.intermediate_values[0] > max(trials[i].intermediate_values[0] for i in (1, 2))
    assert len(trials) == 5


# --------------------------------------------------------------------------------------------
# several ranks, one trial


@pytest.mark.heavy
def test_two_ranks_run_each_trial_together_not_one_trial_per_rank(
    tiny_data: Path, tiny_folds: Path, tmp_path: Path
) -> None:
    """torchrun with two CPU ranks (gloo, what `accelerate launch --multi_gpu` sets up on GPUs):
    rank 0 owns each trial; rank 1 trains the same values in the same DDP run."""
    config = write_config(tmp_path / "tune.yaml", tiny_data, tiny_folds, tmp_path)
    url = f"sqlite:///{tmp_path}/ddp.db"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "kaggle_style",
        "tune",
        "--config",
        str(config),
        "--study",
        "ddp",
        "--storage",
        url,
        "--n-trials",
        "2",
        "--pruner",
        "none",
        "--quiet",
    ]
    out = subprocess.run(
        cmd,
        cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    study = optuna.load_study(study_name="ddp", storage=url)
    assert [t.state for t in study.trials] == [States.COMPLETE] * 2
    followed = {
        int(line.split()[4].rstrip(":")): ast.literal_eval(line.split(": ", 1)[1])
        for line in out.stdout.splitlines()
        if line.startswith("rank 1 follows trial ")
    }
    # rank 1 ran exactly rank 0's trials, with rank 0's sampled values
    assert followed == {t.number: t.params for t in study.trials}
    for t in study.trials:
        done = json.loads((Path(t.user_attrs["run_dir"]) / "fold0" / "done.json").read_text())
        assert t.value == pytest.approx(done["scores"]["log_loss"], abs=1e-12)


# --------------------------------------------------------------------------------------------
# the demo claim


@pytest.mark.slow
def test_a_short_study_on_demo_data_beats_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo's main recipe (configs/demo-crop.yaml, its own search space) on default-size demo
    data, tuned on fold 0: a handful of trials beat the defaults trial, and the exported config
    trains to the same value."""
    from kaggle_style.data.folds import make_folds
    from kaggle_style.data.tables import load_competition_data
    from kaggle_style.demo.generator import generate_demo_data
    from kaggle_style.detect.crops import CropConfig, run_crops
    from kaggle_style.files import write_csv

    data = generate_demo_data(tmp_path / "demo", seed=0)
    folds = write_csv(
        tmp_path / "folds.csv", make_folds(load_competition_data(data).train, n_splits=5, seed=42)
    )
    manifest = run_crops(
        CropConfig(
            detections=data / "detections.json",
            data=data,
            out=tmp_path / "crops",
            thresholds=[0.05, 0.1, 0.2],
        )
    )
    recipe = Path(__file__).parents[1] / "configs" / "demo-crop.yaml"
    assert {"lr", "crop_threshold"} <= set(resolve_config(TrainConfig, recipe).search_space)
    monkeypatch.chdir(tmp_path)
    overrides = [
        f"data={data}",
        f"folds_file={folds}",
        f"crops_manifest={manifest}",
        f"runs_dir={tmp_path / 'runs'}",
        f"cache_dir={tmp_path / 'cache'}",
        "folds=[0]",
        "num_workers=0",
    ]
    assert (
        main(
            [
                "tune",
                "--config",
                str(recipe),
                "--set",
                *overrides,
                "--study",
                "demo",
                "--n-trials",
                "6",
                "--sampler-seed",
                "0",
                "--pruner-startup-trials",
                "2",
                "--pruner-warmup-steps",
                "2",
                "--quiet",
            ]
        )
        == 0
    )
    study = optuna.load_study(study_name="demo", storage="sqlite:///studies/demo.db")
    defaults, best = study.trials[0], study.best_trial
    states = [t.state.name for t in study.trials]
    print(
        f"\ndefaults trial: {defaults.value:.4f}; best: trial {best.number} {best.value:.4f} "
        f"{best.params}; states {states}"
    )
    assert defaults.user_attrs["defaults"] and defaults.state == States.COMPLETE
    assert best.value < defaults.value
    out = tmp_path / "demo.best.yaml"
    assert main(["tune-export", "--study", "demo", "--out", str(out)]) == 0
    cfg = resolve_config(TrainConfig, out)
    again = run_training(dataclasses.replace(cfg, folds=[0], runs_dir=str(tmp_path / "again")))
    assert again["trained_folds_log_loss"] == pytest.approx(best.value, abs=1e-6)
