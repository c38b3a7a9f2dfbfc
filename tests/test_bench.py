"""The benchmark at a tiny size on CPU, and the data-path pieces it measures. No timing asserts:
speed targets live in the benchmark's printed figures, never in tests. A counting clock stands
for the timer instead, so each figure is exactly the images its timed parts counted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import albumentations as A
import numpy as np
import pytest
import torch
from PIL import Image

from benchmarks import data_path as data_path_module
from benchmarks.bench import NAME_WIDTH, BenchConfig, main, resolve
from benchmarks.data_path import DATA_PATHS
from benchmarks.frames import make_frames
from kaggle_style.data.images import decode_rgb, load_resized
from kaggle_style.training.data import CachedImages


@pytest.fixture
def one_thread() -> Iterator[None]:
    """A tiny model gains nothing from a second thread; on a busy box it only spins."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class _CountingClock:
    """Stands for `time` in the bench's timer: every reading is one second after the last, so
    each timed part lasts exactly one second and its rate is the images it counted."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        self.now += 1.0
        return self.now


def _small_bench(device: str, work: Path) -> list[str]:
    """The benchmark's arguments at a test's size: test_resnet at 32 px, 12 images x 2 epochs in
    batches of 4, every data path."""
    sizes = ["--image-size", "32", "--batch-size", "4", "--n-images", "12", "--epochs", "2"]
    return [
        *["--device", device, "--backbone", "test_resnet", *sizes, "--workers", "1"],
        *["--frame-size", "96x54", "--work-dir", str(work), "--json", "--data-paths", *DATA_PATHS],
    ]


def _table_value(lines: list[str], row: str) -> float:
    """The images/s column of the table row that starts with `row`."""
    (line,) = [line for line in lines if line.startswith(row)]
    return float(line[NAME_WIDTH : NAME_WIDTH + 10])


def test_bench_prints_a_table_then_every_figure_as_json(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    one_thread: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each figure counts what its docstring says, read off a one-second-per-reading clock: 12
    images x 2 epochs in batches of 4, 8 bound steps (two halves); the table equals the JSON."""
    monkeypatch.setattr(data_path_module, "time", _CountingClock())
    code = main(_small_bench("cpu", tmp_path))
    printed = capsys.readouterr()
    lines = printed.out.strip().splitlines()
    assert code == 0
    # each figure went to stderr as it was measured (what a run cut short still leaves)
    notes = printed.err.splitlines()
    for path in DATA_PATHS:
        assert any(n.startswith(f"[{path}] e2e training ") for n in notes), printed.err
    assert any("one iterator across epochs" in n for n in notes)
    result = json.loads(lines[-1])
    assert result["device"] == "cpu" and result["gpu_name"] is None
    asked = ("backbone", "image_size", "batch_size", "workers", "n_images", "frame_size")
    assert [result[k] for k in asked] == ["test_resnet", 32, 4, 1, 12, "96x54"]
    assert list(result["paths"]) == list(DATA_PATHS)
    # bounds: 2 halves of 4 steps x 4 images (training), of 2 steps x 8 images (inference)
    assert (result["bound_train_img_s"], result["bound_infer_img_s"]) == (16.0, 16.0)
    assert result["cache_build_s"] == 1.0
    assert result["decode_per_worker_img_s"] == 12.0  # every frame once
    assert result["transport_img_s"] == {"float32": 32.0, "uint8": 32.0}  # 8 batches of 4
    for name, p in result["paths"].items():
        assert p["e2e_train_img_s"] == 12.0, name  # epoch 2 only: 3 whole batches of 4
        assert p["e2e_infer_img_s"] == 12.0, name  # every image once, after the warm pass
        assert p["per_worker_img_s"] == 256.0, name  # max(256, 4 batches) items, in batches
        assert p["e2e_train_ratio"] == p["e2e_train_img_s"] / result["bound_train_img_s"]
        assert p["e2e_infer_ratio"] == p["e2e_infer_img_s"] / result["bound_infer_img_s"]
        transport = result["transport_img_s"]["float32" if name == "float" else "uint8"]
        assert p["predicted_ceiling_img_s"] == min(transport, 1 * p["per_worker_img_s"])
        for row, key in (
            (f"[{name}] e2e training, epochs 2+", "e2e_train_img_s"),
            (f"[{name}] per worker", "per_worker_img_s"),
        ):
            assert _table_value(lines, row) == round(p[key], 1)
    in_row = result["in_row"]
    assert in_row["data_path"] == DATA_PATHS[0] and in_row["e2e_train_img_s"] == 12.0
    assert in_row["vs_new_iterator_each_epoch"] == 1.0
    assert _table_value(lines, f"[{DATA_PATHS[0]}] e2e training, one iterator") == 12.0
    assert _table_value(lines, "model-only training (bound)") == result["bound_train_img_s"]
    assert result["best_path"] == DATA_PATHS[0]  # a tie goes to the first path asked for
    assert result["e2e_train_ratio"] == 0.75
    # the frames stay for the next run; the run's cache does not
    assert [p.name.startswith("frames_96x54") for p in tmp_path.iterdir()] == [True]


def test_uint8_batches_carry_the_pixels_of_float_batches(tmp_path: Path) -> None:
    """The `uint8` path normalised on the device equals the `float` path's worker output, and the
    device-augment path's workers send the resized image unaugmented."""
    from benchmarks.data_path import data_path

    data_cfg = {
        "input_size": (3, 24, 24),
        "mean": (0.485, 0.456, 0.406),
        "std": (0.229, 0.224, 0.225),
    }
    rng = np.random.default_rng(0)
    np.save(tmp_path / "pixels.npy", rng.integers(0, 256, (3, 28, 28, 3), dtype=np.uint8))
    paths = {name: data_path(name, data_cfg, "none", torch.device("cpu")) for name in DATA_PATHS}
    batches = {}
    for name, path in paths.items():
        dataset = CachedImages(
            tmp_path / "pixels.npy", np.arange(3), np.zeros(3), path.train_transform
        )
        batch = torch.stack([dataset[(i, 0)][0] for i in range(3)])
        if path.augment is not None:
            batch = path.augment(batch, (0,))
        batches[name] = path.normalize(batch)
    assert batches["float"].dtype == torch.float32
    assert torch.allclose(batches["uint8"], batches["float"], atol=1e-5)
    assert torch.allclose(batches["uint8+device_augment"], batches["float"], atol=1e-5)


def test_frames_are_rendered_once_at_full_size_and_reused(tmp_path: Path) -> None:
    cfg = BenchConfig(
        n_images=6, unique_frames=2, frame_width=64, frame_height=36, work_dir=str(tmp_path)
    )
    paths = make_frames(cfg)
    assert len(paths) == 6 and all(p.is_file() for p in paths)
    assert decode_rgb(paths[0]).shape == (36, 64, 3)
    assert paths[0].read_bytes() == paths[2].read_bytes() != paths[1].read_bytes()
    stamps = [p.stat().st_mtime_ns for p in paths]
    assert make_frames(cfg) == paths
    assert [p.stat().st_mtime_ns for p in paths] == stamps
    assert make_frames(replace(cfg, n_images=3)) == paths[:3]


def test_cached_images_draw_each_transform_independently_and_reproducibly(tmp_path: Path) -> None:
    """Seeding every transform alike made their coin flips coincide; now all four outcomes of two
    p=0.5 flips occur, and a (index, seed) item still gives the same pixels every time."""
    pixels = np.arange(4 * 4 * 3, dtype=np.uint8).reshape(1, 4, 4, 3) * 3
    np.save(tmp_path / "pixels.npy", pixels)
    transform = A.Compose([A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5)])
    dataset = CachedImages(tmp_path / "pixels.npy", np.array([0]), np.array([5]), transform)
    image = pixels[0]
    outcomes = {
        "none": image,
        "h": image[:, ::-1],
        "v": image[::-1],
        "hv": image[::-1, ::-1],
    }
    seen = set()
    for seed in range(64):
        out, label = dataset[(0, seed)]
        assert label == 5
        assert np.array_equal(out, dataset[(0, seed)][0])
        seen |= {name for name, ref in outcomes.items() if np.array_equal(out, ref)}
    assert seen == set(outcomes)


def test_resized_load_with_jpeg_draft_matches_a_full_decode(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    smooth = np.kron(rng.integers(0, 255, (27, 48, 3)), np.ones((20, 20, 1))).astype(np.uint8)
    path = tmp_path / "frame.jpg"
    Image.fromarray(smooth).save(path, quality=95)  # 960x540
    fast = load_resized(path, 111)
    full = np.asarray(Image.fromarray(decode_rgb(path)).resize((111, 111), Image.BILINEAR))
    assert fast.shape == (111, 111, 3) and fast.dtype == np.uint8
    assert np.abs(fast.astype(float) - full).mean() < 3.0


def test_gpu_accelerators_copy_batches_without_waiting_for_the_queued_step() -> None:
    """A blocking copy of each pinned batch would wait for the step before it: every
    Accelerator here (trainer, bench, predict) is built from these settings."""
    from kaggle_style.training.recipe import accelerator_settings

    gpu, cpu = accelerator_settings(True), accelerator_settings(False)
    assert gpu["dataloader_config"].non_blocking and gpu["mixed_precision"] == "bf16"
    assert not cpu["dataloader_config"].non_blocking and cpu["cpu"] and not gpu["cpu"]


class _StepClock:
    """Stands for `time` in the bench's timer: it reads the training steps taken so far, so a
    rate is images per step, the batch size, if a figure counts exactly its timed steps."""

    def __init__(self) -> None:
        self.steps = 0

    def perf_counter(self) -> float:
        return float(self.steps)


def test_one_iterator_across_epochs_trains_on_the_same_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`EpochsInRow` changes when the workers start, not what the steps see: the bench's two
    ways of iterating feed identical batches, epoch by epoch, with a worker process, and both
    leave the first epoch (worker start-up) out of images and time alike."""
    from accelerate import Accelerator

    from benchmarks.data_path import data_path, e2e_train, e2e_train_in_row

    clock = _StepClock()
    monkeypatch.setattr(data_path_module, "time", clock)

    data_cfg = {
        "input_size": (3, 24, 24),
        "mean": (0.485, 0.456, 0.406),
        "std": (0.229, 0.224, 0.225),
    }
    rng = np.random.default_rng(0)
    np.save(tmp_path / "pixels.npy", rng.integers(0, 256, (10, 28, 28, 3), dtype=np.uint8))
    path = data_path("uint8", data_cfg, "light", torch.device("cpu"))
    accelerator = Accelerator(cpu=True)
    fed: dict[str, list[tuple[list[int], float]]] = {"new each epoch": [], "in a row": []}
    for name, measure in (("new each epoch", e2e_train), ("in a row", e2e_train_in_row)):

        def step(images: torch.Tensor, labels: torch.Tensor, seen=fed[name]) -> None:
            seen.append((labels.tolist(), float(images.double().sum())))
            clock.steps += 1

        assert measure(step, accelerator, path, tmp_path / "pixels.npy", 10, 3, 3, 1, 7) == 3.0
    assert len(fed["in a row"]) == 9  # 3 epochs of 3 whole batches (the 10th image dropped)
    assert fed["in a row"] == fed["new each epoch"]
    assert fed["in a row"][:3] != fed["in a row"][3:6]  # each epoch its own order and draws


def test_epochs_in_row_are_each_epoch_as_batched_alone() -> None:
    from torch.utils.data import BatchSampler

    from benchmarks.data_path import EpochsInRow
    from kaggle_style.training.data import SeededSampler

    sampler = SeededSampler(10, seed=3)
    alone = []
    for epoch in (2, 3, 4):
        sampler.set_epoch(epoch)
        alone += list(BatchSampler(sampler, 4, drop_last=True))
    in_row = EpochsInRow(SeededSampler(10, seed=3), 4, 2, 5)
    assert list(in_row) == alone and len(in_row) == len(alone) == 6


# On a real CUDA GPU (the `gpu` marker: skipped, saying so, where torch sees none, as in CI): the
# device path runs for real (bf16, channels-last, the card named). No timing asserts.


@pytest.mark.gpu
def test_auto_device_is_the_cuda_gpu_where_one_is_visible() -> None:
    assert resolve(BenchConfig()).device == "cuda"


@pytest.mark.gpu
def test_bench_on_a_cuda_gpu_trains_in_bf16_and_names_the_card(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(_small_bench("cuda", tmp_path))
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["device"] == "cuda" and result["gpu_name"] == torch.cuda.get_device_name()
    assert result["precision"] == "bf16" and result["channels_last"] is True
    assert list(result["paths"]) == list(DATA_PATHS)
    for name, path in result["paths"].items():
        assert path["e2e_train_img_s"] > 0 and path["e2e_infer_img_s"] > 0, name
