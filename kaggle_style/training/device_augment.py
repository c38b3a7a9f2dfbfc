"""The `light` augmentation on the device, for uint8 batches: the workers only read and resize.

On the lent H100 the data path, not the model, capped training (the GPU check's figures:
benchmarks/results/gpu_check_h100_*.json), and colour jitter is most of a worker's time per
image (`benchmarks.bench` prints per-worker rates).
With `augment_on: device` the workers send resized uint8 images and this module flips and jitters
the whole batch on the GPU: the same families and ranges as `data.transforms.train_transform`
(flip p=0.5; brightness, contrast, saturation, hue with p=0.8), in a fixed order (albumentations
shuffles it per image). Close to albumentations' `ColorJitter`, not bit for bit, hence a model key.

Ours rather than kornia's: each batch's draws come from a generator seeded by (seed, fold, epoch,
step, process), so a resumed run or another worker count repeats them exactly.
"""

from __future__ import annotations

import numpy as np
import torch

from kaggle_style.data.transforms import COLOUR_RANGE, FLIP_P, HUE_RANGE, JITTER_P
from kaggle_style.training.config import DEVICE_AUGMENTATIONS

_GRAY = (0.299, 0.587, 0.114)  # as OpenCV's RGB2GRAY, which albumentations uses


class DeviceAugment:
    """`augment(images_uint8, key)` -> float images in 0..255, flipped and jittered per sample."""

    def __init__(self, name: str, strength: float = 1.0) -> None:
        if name not in DEVICE_AUGMENTATIONS:
            raise ValueError(
                f"augment {name!r} has no device version; "
                f"choose one of {', '.join(DEVICE_AUGMENTATIONS)}"
            )
        self.name = name
        s = max(0.0, float(strength))
        self.colour_range, self.hue_range = COLOUR_RANGE * s, HUE_RANGE * s

    def draws(self, n: int, key: tuple[int, ...]) -> dict[str, torch.Tensor]:
        """Each sample's flip and jitter factors; identity where a draw says no jitter."""
        seed = int(np.random.SeedSequence([int(k) for k in key]).generate_state(1)[0])
        gen = torch.Generator().manual_seed(seed)

        def uniform(low: float, high: float) -> torch.Tensor:
            return low + (high - low) * torch.rand(n, generator=gen, dtype=torch.float64)

        flip = torch.rand(n, generator=gen) < FLIP_P
        jitter = torch.rand(n, generator=gen) < JITTER_P
        c, h = self.colour_range, self.hue_range
        factors = {name: uniform(1 - c, 1 + c) for name in ("brightness", "contrast", "saturation")}
        hue = uniform(-h, h)
        out = {name: torch.where(jitter, f, torch.ones_like(f)) for name, f in factors.items()}
        out["hue"] = torch.where(jitter, hue, torch.zeros_like(hue))
        out["flip"] = flip
        return out

    def __call__(self, images: torch.Tensor, key: tuple[int, ...]) -> torch.Tensor:
        images = images.float()
        if self.name == "none":
            return images
        # non_blocking: a plain copy from pageable memory would wait for the queued steps
        d = {
            k: v.to(images.device, non_blocking=True)
            for k, v in self.draws(len(images), key).items()
        }
        images = torch.where(d["flip"].view(-1, 1, 1, 1), images.flip(3), images)
        return jitter(images, d["brightness"], d["contrast"], d["saturation"], d["hue"])


def _per_sample(factor: torch.Tensor) -> torch.Tensor:
    return factor.float().view(-1, 1, 1, 1)


def _gray(images: torch.Tensor) -> torch.Tensor:
    weights = images.new_tensor(_GRAY).view(1, 3, 1, 1)
    return (images * weights).sum(dim=1, keepdim=True)


def jitter(
    images: torch.Tensor,
    brightness: torch.Tensor,
    contrast: torch.Tensor,
    saturation: torch.Tensor,
    hue: torch.Tensor,
) -> torch.Tensor:
    """Brightness, contrast, saturation, hue on float 0..255 images (N, 3, H, W), clipped after
    each step as the uint8 originals are; factors of 1 (hue 0) leave a sample unchanged."""
    images = (images * _per_sample(brightness)).clamp(0, 255)
    mean = _gray(images).mean(dim=(2, 3), keepdim=True)
    images = (mean + (images - mean) * _per_sample(contrast)).clamp(0, 255)
    gray = _gray(images)
    images = (gray + (images - gray) * _per_sample(saturation)).clamp(0, 255)
    return _rotate_hue(images, hue).clamp(0, 255)


def _rotate_hue(images: torch.Tensor, hue: torch.Tensor) -> torch.Tensor:
    """Shift each sample's HSV hue by `hue` of a full turn (albumentations' and torchvision's
    unit), on 0..255 floats: value and saturation stay, as in the worker path."""
    x = images / 255.0
    value, _ = x.max(dim=1)
    chroma = value - x.min(dim=1).values
    grey = chroma == 0
    saturation = chroma / torch.where(grey, torch.ones_like(value), value)
    safe = torch.where(grey, torch.ones_like(chroma), chroma)
    r, g, b = ((value - x[:, i]) / safe for i in range(3))
    sector = torch.where(
        value == x[:, 0], b - g, torch.where(value == x[:, 1], 2.0 + r - b, 4.0 + g - r)
    )
    h = (sector / 6.0 + _per_sample(hue)[:, 0] + 2.0) % 1.0
    h6 = h * 6.0
    index = torch.floor(h6).long().clamp(0, 5)
    f = h6 - index
    p = value * (1 - saturation)
    q = value * (1 - saturation * f)
    t = value * (1 - saturation * (1 - f))
    choose = index.unsqueeze(0)
    out = [
        torch.stack(parts).gather(0, choose).squeeze(0)
        for parts in (
            (value, q, p, p, t, value),
            (t, value, value, q, p, p),
            (p, p, t, value, value, q),
        )
    ]
    return torch.stack(out, dim=1) * 255.0
