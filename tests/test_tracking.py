"""Tracking: TensorBoard event files per fold, read back; a resumed fold shows no step twice;
Optuna trials beside them; optuna-dashboard answers on loopback."""

from __future__ import annotations

import shutil
import threading
import urllib.request
from pathlib import Path

import optuna
import pytest

from kaggle_style.config import resolve_config
from kaggle_style.launch.jobs import with_values
from kaggle_style.training.config import TrainConfig
from kaggle_style.training.tracking import TRACKING_DIR, TrialTracking, open_tracker

TINY = Path(__file__).resolve().parents[1] / "configs" / "tiny-cpu.yaml"
NAMED = (
    "train/loss",
    "train/lr",
    "train/images_per_s",
    "val/log_loss",
    "val/f1_macro",
    "memory/peak_host_gib",
)


class Killed(Exception):
    pass


def scalars(folder: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    return EventAccumulator(str(folder)).Reload()


def test_event_files_per_fold_and_a_resumed_fold_logs_each_step_once(
    tiny_data: Path, tiny_folds: Path, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    cfg = resolve_config(
        TrainConfig,
        TINY,
        {"num_workers": 0, "epochs": 3, "log_every": 1, "max_steps_per_epoch": 2, "folds": [0]},
        name="t",
        data=str(tiny_data),
        folds_file=str(tiny_folds),
        runs_dir=str(runs),
        cache_dir=str(tmp_path / "cache"),
        progress=False,
    )
    checkpoints, kept = runs / "t" / "fold0" / "checkpoints", tmp_path / "epoch1"

    def killed_in_epoch_two(fold: int, epoch: int, loss: float) -> None:
        if epoch == 0:
            shutil.copytree(checkpoints, kept)
        if epoch == 1:  # epoch 2's steps are logged; the kill comes before its checkpoint
            raise Killed

    from kaggle_style.training.run import run_training

    with pytest.raises(Killed):
        run_training(cfg, killed_in_epoch_two)
    shutil.rmtree(checkpoints)
    shutil.copytree(kept, checkpoints)
    fold0 = runs / "t" / TRACKING_DIR / "fold0"
    (first,) = fold0.glob("events.out.tfevents.*")
    assert [e.step for e in scalars(first).Scalars("train/loss")] == [1, 2, 3, 4]

    run_training(with_values(cfg, folds=[0, 1], resume=True))
    for fold in (0, 1):
        events = scalars(runs / "t" / TRACKING_DIR / f"fold{fold}")
        assert set(NAMED) <= set(events.Tags()["scalars"]), fold
        assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3, 4, 5, 6]
        assert [e.step for e in events.Scalars("val/log_loss")] == [2, 4, 6]
        assert all(0.0 <= e.value <= 1.0 for e in events.Scalars("val/f1_macro"))
    assert len(list(fold0.glob("events.out.tfevents.*"))) == 2  # the resumed attempt's own file


def test_trials_log_parameters_and_values(tmp_path: Path) -> None:
    study = optuna.create_study()
    study.add_trial(
        optuna.trial.create_trial(
            params={"lr": 0.01, "view": "crop"},
            distributions={
                "lr": optuna.distributions.FloatDistribution(1e-4, 1.0, log=True),
                "view": optuna.distributions.CategoricalDistribution(["crop", "full"]),
            },
            value=1.25,
        )
    )
    TrialTracking("tensorboard", tmp_path, "s")(study, study.trials[0])
    events = scalars(tmp_path / "s" / TRACKING_DIR / "trials")
    assert [(e.step, e.value) for e in events.Scalars("trial/value")] == [(0, 1.25)]
    assert [e.value for e in events.Scalars("param/lr")] == [pytest.approx(0.01)]


def test_a_tracker_whose_package_is_missing_is_one_line(tmp_path: Path) -> None:
    import importlib.util

    from kaggle_style.errors import UserError

    if importlib.util.find_spec("mlflow") is not None:
        pytest.skip("mlflow is installed here")
    with pytest.raises(UserError, match="pip install mlflow"):
        open_tracker("mlflow", "fold0", tmp_path, "p")
    assert open_tracker("none", "fold0", tmp_path, "p") is None


def test_dashboard_serves_the_study_on_loopback(tmp_path: Path) -> None:
    from kaggle_style.launch.dashboard import dashboard_server

    (tmp_path / "studies").mkdir()
    url = f"sqlite:///{tmp_path / 'studies' / 'demo.db'}"
    study = optuna.create_study(study_name="demo-crop", storage=url)
    study.optimize(lambda t: t.suggest_float("x", 0, 1) ** 2, n_trials=2)
    server = dashboard_server(url, port=0)
    assert server.server_address[0] == "127.0.0.1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        with urllib.request.urlopen(f"{base}/api/studies", timeout=20) as answer:
            body = answer.read().decode()
        assert answer.status == 200 and '"demo-crop"' in body
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    assert not thread.is_alive()
