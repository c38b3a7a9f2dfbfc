"""The trainer on tiny generated data with timm's test_* models: outputs, resume, bad input."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from kaggle_style.config import resolve_config
from kaggle_style.constants import FOLD_COL, ID_COL
from kaggle_style.data.tables import load_competition_data
from kaggle_style.errors import UserError
from kaggle_style.run_contract import check_run
from kaggle_style.task import CONSERVISION_CLASSES as CLASSES
from kaggle_style.training.config import TrainConfig
from kaggle_style.training.recipe import mix_batch, soft_cross_entropy
from kaggle_style.training.run import run_training

# Started processes load tests/write_log/sitecustomize.py: it logs each output's writer.
WRITE_LOG_HOOK = str(Path(__file__).resolve().parent / "write_log")

REPO = Path(__file__).resolve().parents[1]


def tiny_config(data: Path, folds_file: Path, tmp: Path, **kw) -> TrainConfig:
    """The shipped tiny-cpu recipe, pointed at the test's data and folders."""
    base = dict(
        name="tiny",
        data=str(data),
        folds_file=str(folds_file),
        runs_dir=str(tmp / "runs"),
        cache_dir=str(tmp / "cache"),
        epochs=2,
        progress=False,
    )
    return resolve_config(TrainConfig, REPO / "configs" / "tiny-cpu.yaml", {**base, **kw})


def test_training_writes_the_run_contract(tiny_data: Path, tiny_folds: Path, tmp_path: Path):
    cfg = tiny_config(tiny_data, tiny_folds, tmp_path)
    summary = run_training(cfg)
    run = cfg.run_dir
    data = load_competition_data(tiny_data)
    oof = pd.read_csv(run / "oof.csv", dtype={ID_COL: str})
    test = pd.read_csv(run / "test.csv", dtype={ID_COL: str})
    assert list(oof.columns) == [ID_COL, *CLASSES, FOLD_COL]
    assert list(oof[ID_COL]) == list(pd.read_csv(tiny_folds, dtype={ID_COL: str})[ID_COL])
    assert list(test.columns) == [ID_COL, *CLASSES]
    assert list(test[ID_COL]) == list(data.test[ID_COL])
    for frame in (oof, test):
        probs = frame[list(CLASSES)].to_numpy()
        assert np.isfinite(probs).all() and np.allclose(probs.sum(axis=1), 1.0)
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["per_fold"]) == {"0", "1", "2"}
    assert metrics["overall"]["log_loss"] == pytest.approx(summary["overall"]["log_loss"])
    config = (run / "config.yaml").read_text()
    assert "git_commit" in config and "backbone: test_resnet" in config
    for fold in range(3):
        assert (run / f"fold{fold}" / "model.safetensors").exists()
        assert not (run / f"fold{fold}" / "checkpoints").exists()


def test_finished_folds_are_skipped_and_changed_config_retrains(
    tiny_data: Path, tiny_folds: Path, tmp_path: Path, capsys
):
    cfg = tiny_config(tiny_data, tiny_folds, tmp_path, epochs=1, folds=[0])
    run_training(cfg)
    first = (cfg.run_dir / "fold0" / "oof.csv").stat().st_mtime_ns
    run_training(cfg)
    assert "up to date" in capsys.readouterr().out
    assert (cfg.run_dir / "fold0" / "oof.csv").stat().st_mtime_ns == first
    assert not (cfg.run_dir / "oof.csv").exists(), "oof.csv needs every fold"
    run_training(tiny_config(tiny_data, tiny_folds, tmp_path, epochs=1, folds=[0], lr=1e-2))
    assert (cfg.run_dir / "fold0" / "oof.csv").stat().st_mtime_ns != first


@pytest.mark.heavy
def test_killed_training_resumes_to_the_same_oof(tiny_data: Path, tiny_folds: Path, tmp_path: Path):
    """SIGKILL after the first epoch's checkpoint, --resume, and the OOF equals a clean run's."""
    args = [
        "--data",
        str(tiny_data),
        "--folds-file",
        str(tiny_folds),
        "--backbone",
        "test_resnet",
        "--epochs",
        "3",
        "--fold",
        "1",
        "--quiet",
        "--set",
        "image_size=48",
        "batch_size=16",
        "num_workers=0",
        "lr=3e-3",
        "mixup_alpha=0.4",
        "drop_path_rate=0.1",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    clean = tmp_path / "clean"
    killed = tmp_path / "killed"
    base = [sys.executable, "-m", "kaggle_style", "train", "--name", "r"]
    subprocess.run(
        [*base, "--runs-dir", str(clean), *args, f"cache_dir={tmp_path}/c"],
        check=True,
        env=env,
        capture_output=True,
    )
    proc = subprocess.Popen(
        [*base, "--runs-dir", str(killed), *args, f"cache_dir={tmp_path}/c"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pointer = killed / "r" / "fold1" / "checkpoints" / "latest.json"
    deadline = time.time() + 120
    while not pointer.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert pointer.exists(), "no checkpoint was written before the run ended"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "r" / "fold1" / "oof.csv").exists()
    out = subprocess.run(
        [*base, "--runs-dir", str(killed), *args, f"cache_dir={tmp_path}/c", "--resume"],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    )
    assert "resumed after epoch" in out.stdout
    a = pd.read_csv(clean / "r" / "fold1" / "oof.csv")[list(CLASSES)].to_numpy()
    b = pd.read_csv(killed / "r" / "fold1" / "oof.csv")[list(CLASSES)].to_numpy()
    assert np.abs(a - b).max() < 1e-5


def test_unreadable_training_image_is_left_out_and_bad_test_image_stops(
    tiny_data: Path, tiny_folds: Path, tmp_path: Path
):
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    frame = load_competition_data(data)
    (data / frame.train.filepath[0]).write_bytes(b"")  # zero-byte
    path = data / frame.train.filepath[1]
    path.write_bytes(path.read_bytes()[:200])  # truncated JPEG
    cfg = tiny_config(data, tiny_folds, tmp_path, epochs=1, folds=[0])
    with pytest.warns(UserWarning, match="cannot be read and are left out"):
        run_training(cfg)
    bad = list(Path(cfg.cache_dir).glob("*/bad_images.csv"))
    assert any(len(pd.read_csv(b)) == 2 for b in bad)
    (data / frame.test.filepath[0]).unlink()
    with pytest.raises(UserError, match=r"test image.*cannot be read"):
        run_training(tiny_config(data, tiny_folds, tmp_path, epochs=1, folds=[0], name="t2"))


def test_nan_loss_stops_with_fold_epoch_and_step(tiny_data: Path, tiny_folds: Path, tmp_path):
    cfg = tiny_config(tiny_data, tiny_folds, tmp_path, epochs=1, folds=[0], lr=1e30)
    with pytest.raises(FloatingPointError, match=r"fold 0, epoch 1, step \d+"):
        run_training(cfg)


def test_soft_cross_entropy_matches_torch_for_hard_targets() -> None:
    logits = torch.randn(6, 8)
    y = torch.tensor([0, 1, 2, 3, 4, 7])
    weights = torch.rand(8) + 0.5
    expected = torch.nn.functional.cross_entropy(logits, y, weight=weights)
    got = soft_cross_entropy(logits, torch.nn.functional.one_hot(y, 8).float(), weights)
    assert torch.allclose(got, expected, atol=1e-6)


def test_mixing_keeps_targets_distributions() -> None:
    cfg = TrainConfig(mixup_alpha=0.4, cutmix_alpha=1.0)
    rng = np.random.default_rng(0)
    images = torch.randn(4, 3, 16, 16)
    targets = torch.nn.functional.one_hot(torch.arange(4), 8).float()
    for _ in range(5):
        mixed, soft = mix_batch(images, targets, cfg, rng)
        assert mixed.shape == images.shape
        assert torch.allclose(soft.sum(dim=1), torch.ones(4))


@pytest.mark.heavy
def test_frozen_epochs_keep_batchnorm_statistics(
    tiny_data: Path, tiny_folds: Path, tmp_path: Path
) -> None:
    """During a frozen warm-up (or with freeze_bn) BatchNorm running statistics do not move."""

    def running_means(run: Path) -> dict[str, torch.Tensor]:
        from safetensors.torch import load_file

        state = load_file(str(run / "fold0" / "model.safetensors"))
        return {k: v for k, v in state.items() if k.endswith("running_mean")}

    base = dict(
        data=str(tiny_data),
        folds_file=str(tiny_folds),
        runs_dir=str(tmp_path / "runs"),
        cache_dir=str(tmp_path / "cache"),
        backbone="test_resnet",
        image_size=32,
        epochs=1,
        batch_size=16,
        folds=[0],
        num_workers=0,
        progress=False,
    )
    run_training(TrainConfig(name="frozen", freeze_epochs=1, **base))
    run_training(TrainConfig(name="bn", freeze_bn=True, **base))
    run_training(TrainConfig(name="free", **base))
    frozen, bn, free = (running_means(tmp_path / "runs" / n) for n in ("frozen", "bn", "free"))
    assert frozen and all(torch.all(v == 0) for v in frozen.values())  # timm inits them at 0
    assert all(torch.all(v == 0) for v in bn.values())
    assert any(torch.any(v != 0) for v in free.values())


class _Killed(Exception):
    pass


def _stop_after_first_epoch(fold: int, epoch: int, loss: float) -> None:
    raise _Killed  # as a kill right after the checkpoint: the fold is left unfinished


def test_resume_refuses_a_changed_config_and_says_what_changed(
    tiny_data: Path, tiny_folds: Path, tmp_path: Path
):
    cfg = tiny_config(tiny_data, tiny_folds, tmp_path, folds=[1])
    with pytest.raises(_Killed):
        run_training(cfg, on_epoch_end=_stop_after_first_epoch)
    changed = tiny_config(tiny_data, tiny_folds, tmp_path, folds=[1], lr=0.3, resume=True)
    with pytest.raises(UserError, match=r"another config \(lr: 0\.003 -> 0\.3\)"):
        run_training(changed)
    assert not (cfg.run_dir / "fold1" / "done.json").exists()
    summary = run_training(tiny_config(tiny_data, tiny_folds, tmp_path, folds=[1], resume=True))
    assert summary["folds"]["1"]["model_hash"] == summary["model_hash"]


def test_retraining_one_fold_under_a_new_config_withdraws_the_run_files(
    tiny_data: Path, tiny_folds: Path, tmp_path: Path
):
    cfg = tiny_config(tiny_data, tiny_folds, tmp_path, epochs=1)
    run_training(cfg)
    check_run(cfg.run_dir)  # one config, combined files newer than every fold: accepted
    run_training(tiny_config(tiny_data, tiny_folds, tmp_path, epochs=1, folds=[0], lr=1e-2))
    for name in ("oof.csv", "test.csv", "metrics.json"):
        assert not (cfg.run_dir / name).exists(), f"{name} from the old config was left"
    with pytest.raises(UserError, match="2 different configs"):
        check_run(cfg.run_dir)


def test_another_config_cannot_train_into_a_run_being_trained(
    tiny_data: Path, tiny_folds: Path, tmp_path: Path
):
    cfg = tiny_config(tiny_data, tiny_folds, tmp_path, epochs=1)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = cfg.run_dir / "fold2" / ".lock"
        lock.parent.mkdir(parents=True)
        import socket

        lock.write_text(
            json.dumps(
                {
                    "pid": holder.pid,
                    "host": socket.gethostname(),
                    "model_hash": "0123456789abcdef",
                    "started": "now",
                }
            )
        )
        with pytest.raises(UserError, match=f"another config by .*:{holder.pid}"):
            run_training(cfg)
    finally:
        holder.kill()
        holder.wait()
    summary = run_training(cfg)  # the holder is gone: its lock is stale and taken over
    assert summary["trained_folds"] == [0, 1, 2]


@pytest.mark.heavy
def test_two_processes_on_one_run_train_each_fold_once(
    tiny_data: Path, tiny_folds: Path, tmp_path: Path
):
    """Two real processes (as two boxes on a shared disk): fold locks split the folds."""
    write_log = tmp_path / "writes.log"
    hooked = os.pathsep.join(filter(None, [WRITE_LOG_HOOK, os.environ.get("PYTHONPATH")]))
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "KAGGLE_STYLE_WRITE_LOG": str(write_log),
        "PYTHONPATH": hooked,
    }
    cmd = [
        sys.executable,
        "-m",
        "kaggle_style",
        "train",
        "--config",
        str(REPO / "configs" / "tiny-cpu.yaml"),
        "--name",
        "shared",
        "--data",
        str(tiny_data),
        "--folds-file",
        str(tiny_folds),
        "--runs-dir",
        str(tmp_path / "runs"),
        "--quiet",
        "--set",
        f"cache_dir={tmp_path}/cache",
        "epochs=2",
    ]
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    writers: dict[str, set[str]] = {}
    for line in write_log.read_text().splitlines():
        pid, path = line.split(" ", 1)
        writers.setdefault(path, set()).add(pid)
    run = (tmp_path / "runs" / "shared").resolve()
    done = {f: writers.get(str(run / f"fold{f}" / "done.json"), set()) for f in range(3)}
    assert all(len(pids) == 1 for pids in done.values()), done
    assert len(set().union(*done.values())) == 2, "both processes should have trained a fold"
    assert "being trained by" in "".join(outputs)
    oof = pd.read_csv(run / "oof.csv", dtype={ID_COL: str})
    assert sorted(oof[ID_COL]) == sorted(pd.read_csv(tiny_folds, dtype={ID_COL: str})[ID_COL])
    check_run(run)


@pytest.fixture
def tiny_disk(tmp_path: Path):
    """A real 384 KiB tmpfs: a runs folder that fills up during the first checkpoint."""
    mount = tmp_path / "small_disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=384k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()})")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_full_runs_disk_is_one_line_and_leaves_no_temp_files(
    tiny_data: Path, tiny_folds: Path, tmp_path: Path, tiny_disk: Path
):
    cfg = tiny_config(tiny_data, tiny_folds, tmp_path, folds=[0], runs_dir=str(tiny_disk))
    with pytest.raises(UserError, match=f"disk full while writing .* in {tiny_disk}"):
        run_training(cfg)
    leftovers = [p for p in tiny_disk.rglob("*") if p.name.endswith(".tmp")]
    assert not leftovers, leftovers


def test_check_run_needs_test_file_only_where_folds_predicted_a_test_set(tmp_path: Path):
    run = tmp_path / "run"
    (run / "fold0").mkdir(parents=True)
    (run / "fold0" / "done.json").write_text(json.dumps({"model_hash": "abc"}))
    (run / "fold0" / "oof.csv").write_text("id\n")
    time.sleep(0.01)
    (run / "oof.csv").write_text("id\n")
    check_run(run)  # a data folder without test images: no test.csv anywhere, accepted
    (run / "fold0" / "test.csv").write_text("id\n")
    with pytest.raises(UserError, match=r"test\.csv is missing"):
        check_run(run)


def test_out_of_memory_halves_the_micro_batch_and_matches_a_run_started_there(
    tiny_data: Path, tiny_folds: Path, tmp_path: Path, monkeypatch, capsys
):
    """A step over `limit` images raises CUDA's out-of-memory error: the run goes on at half the
    micro-batch and twice the accumulation, and ends where a run started there ends."""
    import kaggle_style.training.recipe as recipe

    folds = pd.read_csv(tiny_folds)
    n_train = int((folds[FOLD_COL] != 0).sum())
    # the loader drops the same remainder at both batch sizes, so both runs see the same samples
    batch = next(b for b in (16, 12, 20, 8) if n_train % b < b // 2)
    limit = batch // 2
    real_loss = recipe.soft_cross_entropy

    def tight_memory(logits, targets, weights):
        if logits.shape[0] > limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_loss(logits, targets, weights)

    monkeypatch.setattr(recipe, "soft_cross_entropy", tight_memory)
    fallen = tiny_config(
        tiny_data, tiny_folds, tmp_path, name="fallen", folds=[0], batch_size=batch, grad_accum=1
    )
    summary = run_training(fallen)
    said = [line for line in capsys.readouterr().out.splitlines() if "out of memory" in line]
    assert len(said) == 1, said
    assert f"micro-batch {batch} x 1 accumulation" in said[0]
    assert f"micro-batch {limit} x 2 (effective batch {batch} unchanged)" in said[0]
    assert summary["folds"]["0"]["batch_fit"] == {"micro_batch": limit, "grad_accum": 2}
    started = tiny_config(
        tiny_data, tiny_folds, tmp_path, name="started", folds=[0], batch_size=limit, grad_accum=2
    )
    run_training(started)
    a = pd.read_csv(fallen.run_dir / "fold0" / "oof.csv")[list(CLASSES)].to_numpy()
    b = pd.read_csv(started.run_dir / "fold0" / "oof.csv")[list(CLASSES)].to_numpy()
    assert np.abs(a - b).max() < 1e-6


def test_out_of_memory_at_micro_batch_one_is_one_line(
    tiny_data: Path, tiny_folds: Path, tmp_path: Path, monkeypatch
):
    import kaggle_style.training.recipe as recipe

    def no_memory(*_):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(recipe, "soft_cross_entropy", no_memory)
    cfg = tiny_config(tiny_data, tiny_folds, tmp_path, epochs=1, folds=[0], batch_size=4)
    with pytest.raises(
        UserError,
        match=r"^out of GPU memory at micro-batch 1: set "
        r"grad_checkpointing: true",
    ):
        run_training(cfg)
