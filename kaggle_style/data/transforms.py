"""albumentations pipelines chosen by name, with size, mean and std from the backbone."""

from __future__ import annotations

import typing
from typing import Any

import albumentations as A
from albumentations.pytorch import ToTensorV2

from kaggle_style.constants import Augment

AUGMENTATIONS = typing.get_args(Augment)
# `light` at strength 1; `training.device_augment` draws from the same numbers.
FLIP_P = 0.5
JITTER_P = 0.8
COLOUR_RANGE = 0.3  # brightness, contrast, saturation: factors in 1 ± this
HUE_RANGE = 0.03  # of a full turn


def _to_tensor(data_cfg: dict[str, Any], normalize: bool) -> list:
    """Float and normalised in the worker, or uint8 for the device to normalise (4x fewer bytes
    through shared memory, pinned memory and the bus: `training.data.batch_normalizer`)."""
    if not normalize:
        return [ToTensorV2()]
    return [A.Normalize(mean=data_cfg["mean"], std=data_cfg["std"]), ToTensorV2()]


def train_transform(
    data_cfg: dict[str, Any], name: str = "light", strength: float = 1.0, normalize: bool = True
) -> A.Compose:
    """Training augmentation; "light" is the reference write-up's (resize, flip, colour jitter).

    `strength` scales the colour and geometry ranges, so a tuner can search one number.
    """
    size = int(data_cfg["input_size"][-1])
    s = max(0.0, float(strength))
    normalise = _to_tensor(data_cfg, normalize)
    if name == "none":
        return A.Compose([A.Resize(size, size), *normalise])
    c = COLOUR_RANGE * s
    jitter = A.ColorJitter(brightness=c, contrast=c, saturation=c, hue=HUE_RANGE * s, p=JITTER_P)
    if name == "light":
        return A.Compose([A.Resize(size, size), A.HorizontalFlip(p=FLIP_P), jitter, *normalise])
    crop = A.RandomResizedCrop(size=(size, size), scale=(max(0.2, 1 - 0.35 * s), 1.0))
    if name == "medium":
        return A.Compose([crop, A.HorizontalFlip(p=0.5), jitter, A.ToGray(p=0.1), *normalise])
    if name == "strong":
        return A.Compose(
            [
                crop,
                A.HorizontalFlip(p=0.5),
                A.Affine(rotate=(-10 * s, 10 * s), translate_percent=(0.0, 0.05 * s), p=0.5),
                jitter,
                A.ToGray(p=0.15),
                A.GaussianBlur(blur_limit=(3, 5), p=0.1 * s),
                A.GaussNoise(p=0.1 * s),
                A.CoarseDropout(
                    num_holes_range=(1, 4),
                    hole_height_range=(0.05, 0.15),
                    hole_width_range=(0.05, 0.15),
                    p=0.3 * s,
                ),
                *normalise,
            ]
        )
    raise ValueError(f"unknown augmentation {name!r}; choose one of {', '.join(AUGMENTATIONS)}")


def eval_transform(data_cfg: dict[str, Any], normalize: bool = True) -> A.Compose:
    """Evaluation: resize to the input size and normalise; no randomness."""
    size = int(data_cfg["input_size"][-1])
    return A.Compose([A.Resize(size, size), *_to_tensor(data_cfg, normalize)])
