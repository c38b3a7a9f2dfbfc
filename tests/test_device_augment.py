"""`augment_on: device`: the GPU-side `light` augmentation against albumentations' own ops, its
seeded draws, the config rules, and a training run that uses it (resume-exact)."""

from __future__ import annotations

from pathlib import Path

import albumentations.augmentations.pixel.functional as F
import cv2
import numpy as np
import pytest
import torch

from kaggle_style.config import ConfigError, resolve_config
from kaggle_style.task import CONSERVISION_CLASSES as CLASSES
from kaggle_style.training.config import TrainConfig, model_differences, model_hash
from kaggle_style.training.device_augment import DeviceAugment, jitter


@pytest.fixture(scope="module")
def frame(shared_data: Path) -> np.ndarray:
    """A real Taï daylight (colour) frame, info bar cut off, small enough to be quick."""
    path = shared_data / "tai_images" / "ZJ016503.jpg"
    image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    return cv2.resize(image[: int(image.shape[0] * 0.9)], (160, 120))


def _ours(image: np.ndarray, **factors: float) -> np.ndarray:
    """Our jitter of one uint8 HWC image with the given factors (the others left at identity)."""
    values = {"brightness": 1.0, "contrast": 1.0, "saturation": 1.0, "hue": 0.0, **factors}
    batch = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    out = jitter(
        batch,
        *(
            torch.tensor([values[k]], dtype=torch.float64)
            for k in ("brightness", "contrast", "saturation", "hue")
        ),
    )
    return out[0].permute(1, 2, 0).numpy()


@pytest.mark.parametrize(
    ("name", "factor", "theirs"),
    [
        ("brightness", 1.25, F.adjust_brightness_torchvision),
        ("brightness", 0.72, F.adjust_brightness_torchvision),
        ("contrast", 1.3, F.adjust_contrast_torchvision),
        ("contrast", 0.7, F.adjust_contrast_torchvision),
        ("saturation", 1.3, F.adjust_saturation_torchvision),
        ("saturation", 0.7, F.adjust_saturation_torchvision),
    ],
)
def test_each_colour_step_matches_albumentations_up_to_uint8_rounding(frame, name, factor, theirs):
    expected = theirs(frame, factor).astype(np.float64)
    ours = _ours(frame, **{name: factor})
    assert np.abs(ours - expected).max() <= 1.01, f"{name} {factor} differs beyond rounding"
    assert np.abs(ours - frame).mean() > 2, "the step must change the image"


@pytest.mark.parametrize("hue", [0.03, -0.03, 0.4])
def test_hue_shift_matches_albumentations_hsv_shift(frame, hue):
    """The same HSV shift as albumentations' float path, and its uint8 path up to rounding."""
    exact = F.adjust_hue_torchvision(frame.astype(np.float32) / 255, hue) * 255
    rounded = F.adjust_hue_torchvision(frame, hue).astype(np.float64)
    ours = _ours(frame, hue=hue)
    assert np.abs(exact - frame).mean() > 1.0, "the shift must move the image"
    assert np.abs(ours - exact).max() < 0.05
    assert np.abs(ours - rounded).mean() < 1.0


def test_identity_factors_leave_the_batch_unchanged(frame):
    assert np.abs(_ours(frame) - frame).max() < 1e-3


def test_draws_follow_the_key_alone_with_the_recipe_rates():
    augment = DeviceAugment("light")
    a, b = augment.draws(4000, (42, 1, 3, 7, 0)), augment.draws(4000, (42, 1, 3, 7, 0))
    other = augment.draws(4000, (42, 1, 3, 8, 0))
    assert all(torch.equal(a[k], b[k]) for k in a), "same key, same draws (resume-exact)"
    assert not torch.equal(a["brightness"], other["brightness"]), "another step draws anew"
    assert a["flip"].float().mean() == pytest.approx(0.5, abs=0.03)
    jittered = (a["brightness"] != 1).float().mean()
    assert jittered == pytest.approx(0.8, abs=0.03)
    moved = a["brightness"][a["brightness"] != 1]
    assert 0.7 <= moved.min() < 0.72 and 1.28 < moved.max() <= 1.3
    assert a["hue"].abs().max() <= 0.03


def test_flips_are_per_sample(frame):
    batch = torch.from_numpy(frame).permute(2, 0, 1)[None].repeat(64, 1, 1, 1)
    out = DeviceAugment("light", strength=0.0)(batch, (0, 0, 0, 0, 0))  # no jitter at strength 0
    flipped = torch.isclose(out, batch.float().flip(3)).flatten(1).all(1)
    same = torch.isclose(out, batch.float()).flatten(1).all(1)
    assert bool((flipped | same).all()) and 10 < int(flipped.sum()) < 54


def test_config_rules_name_the_key():
    with pytest.raises(ConfigError, match="augment_on: device has no 'strong'"):
        resolve_config(TrainConfig, None, {"augment_on": "device", "augment": "strong"})
    with pytest.raises(ConfigError, match="needs uint8 batches"):
        resolve_config(TrainConfig, None, {"augment_on": "device", "normalize_on": "worker"})
    with pytest.raises(ValueError, match="no device version"):
        DeviceAugment("medium")


def test_the_augmentation_place_is_a_learning_key():
    """`augment_on` changes the hash, and the resume refusal names the key and both values."""
    default, device = TrainConfig(), TrainConfig(augment_on="device")
    assert model_hash(default) != model_hash(device)
    saved = vars(default)
    assert model_differences(saved, default) == []
    assert model_differences(saved, device) == ["augment_on: 'worker' -> 'device'"]


class _Stop(Exception):
    pass


def test_training_with_device_augmentation_is_resume_exact(tiny_data, tiny_folds, tmp_path):
    """Stopped after epoch 1 and resumed, a device-augmented fold ends as the run in one go; the
    device path really ran (its OOF differs from the worker path's)."""
    import pandas as pd

    from kaggle_style.training.run import run_training

    def config(name: str, **kw) -> TrainConfig:
        base = dict(
            name=name,
            data=str(tiny_data),
            folds_file=str(tiny_folds),
            runs_dir=str(tmp_path / "runs"),
            cache_dir=str(tmp_path / "cache"),
            backbone="test_resnet",
            image_size=48,
            batch_size=16,
            num_workers=0,
            epochs=2,
            folds=[1],
            progress=False,
            lr=3e-3,
        )
        return resolve_config(TrainConfig, None, {**base, **kw})

    def oof(cfg: TrainConfig) -> np.ndarray:
        return pd.read_csv(cfg.run_dir / "fold1" / "oof.csv")[list(CLASSES)].to_numpy()

    def stop_after_first(fold: int, epoch: int, loss: float) -> None:
        if epoch == 0:
            raise _Stop

    whole = config("whole", augment_on="device")
    run_training(whole)
    worker = config("worker")
    run_training(worker)
    assert np.abs(oof(whole) - oof(worker)).max() > 1e-4, "the device path must change training"
    stopped = config("stopped", augment_on="device")
    with pytest.raises(_Stop):
        run_training(stopped, on_epoch_end=stop_after_first)
    assert not (stopped.run_dir / "fold1" / "oof.csv").exists()
    run_training(config("stopped", augment_on="device", resume=True))
    assert np.abs(oof(whole) - oof(stopped)).max() < 1e-6
