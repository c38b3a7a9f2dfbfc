"""Every shipped config loads, and (slow) builds its backbone and runs one training step."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from kaggle_style.config import resolve_config
from kaggle_style.constants import CLASSES
from kaggle_style.models import create_model
from kaggle_style.train import TrainConfig, soft_cross_entropy

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TRAIN_CONFIGS = sorted(p for p in CONFIGS.glob("*.yaml") if not p.name.startswith("ensemble"))


@pytest.mark.parametrize("path", TRAIN_CONFIGS, ids=lambda p: p.stem)
def test_config_resolves(path: Path) -> None:
    cfg = resolve_config(TrainConfig, path)
    assert cfg.backbone and cfg.epochs >= 1 and cfg.batch_size >= 1


@pytest.mark.slow
@pytest.mark.parametrize("path", TRAIN_CONFIGS, ids=lambda p: p.stem)
def test_config_backbone_trains_one_step_at_a_tiny_size(path: Path) -> None:
    cfg = resolve_config(TrainConfig, path)
    size = 75 if "inception" in cfg.backbone else 64
    model = create_model(cfg.backbone, len(CLASSES), pretrained=False, image_size=size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    images = torch.randn(2, 3, size, size)
    targets = torch.nn.functional.one_hot(torch.tensor([0, 4]), len(CLASSES)).float()
    loss = soft_cross_entropy(model(images), targets, torch.ones(len(CLASSES)))
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
