"""The optimizer from timm's factory on timm's test_* models: which parameters decay, what rate
each layer learns at, and that the head multiplier composes with the layer decay."""

from __future__ import annotations

import re

import pytest
import timm
import torch

from kaggle_style.errors import UserError
from kaggle_style.models import classifier_parameters
from kaggle_style.training.config import TrainConfig
from kaggle_style.training.recipe import build_optimizer

LR, WD, HEAD = 1e-3, 0.05, 10.0


def _groups(backbone: str, **kw):
    model = timm.create_model(backbone, pretrained=False, num_classes=8)
    cfg = TrainConfig(backbone=backbone, lr=LR, weight_decay=WD, head_lr_mult=HEAD, **kw)
    optimizer, _, _ = build_optimizer(cfg, model, steps_per_epoch=10, use_cuda=False)
    group_of = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    return model, group_of


def _no_decay_expected(name: str, param: torch.Tensor) -> bool:
    """Norm weights, biases, position embeddings and tokens (by name, not by the 1-D rule)."""
    return (
        name.endswith(".bias")
        or "norm" in name
        or re.search(r"(^|\.)bn\d*\.", name) is not None
        or "pos_embed" in name
        or name.endswith("_token")
        or name.endswith(".gamma")
    )


@pytest.mark.parametrize("backbone", ["test_vit", "test_convnext", "test_efficientnet"])
@pytest.mark.parametrize("layer_decay", [None, 0.7])
def test_norms_biases_embeddings_and_tokens_never_decay(backbone: str, layer_decay):
    model, group_of = _groups(backbone, layer_decay=layer_decay)
    named = dict(model.named_parameters())
    assert len(group_of) == len(named), "every parameter is optimised exactly once"
    for name, p in named.items():
        decay = group_of[id(p)]["weight_decay"]
        if _no_decay_expected(name, p):
            assert decay == 0.0, name
        elif p.ndim > 1:
            assert decay == WD, name
    assert any("pos_embed" in n or n.endswith("_token") for n in named) == (backbone == "test_vit")


def test_vit_layer_rates_follow_layer_decay_and_the_head_multiplier():
    decay = 0.7
    model, group_of = _groups("test_vit", layer_decay=decay)
    # embeddings are layer 0, block i layer i + 1, the final norm joins the last block, the head
    # is the top layer
    depth = len(model.blocks) + 1
    head_ids = {id(p) for p in classifier_parameters(model)[1]}
    for name, p in model.named_parameters():
        if name.startswith(("cls_token", "reg_token", "pos_embed", "patch_embed")):
            layer = 0
        elif name.startswith("blocks."):
            layer = int(name.split(".")[1]) + 1
        elif name.startswith("norm."):
            layer = depth - 1
        else:
            layer = depth
        want = LR * decay ** (depth - layer) * (HEAD if id(p) in head_ids else 1.0)
        assert group_of[id(p)]["lr"] == pytest.approx(want, rel=1e-12), name


@pytest.mark.parametrize("backbone", ["test_convnext", "test_efficientnet"])
def test_rates_never_fall_from_stem_to_head(backbone: str):
    """Convolutional families: earlier layers learn slower, the stem slowest, the head at
    lr x head_lr_mult; off (None or 1.0) every backbone parameter learns at lr."""
    model, group_of = _groups(backbone, layer_decay=0.8)
    head_ids = {id(p) for p in classifier_parameters(model)[1]}
    rates = [group_of[id(p)]["lr"] for p in model.parameters() if id(p) not in head_ids]
    assert rates == sorted(rates) and rates[0] < rates[-1] <= LR
    assert [group_of[i]["lr"] for i in head_ids] == pytest.approx([LR * HEAD] * len(head_ids))
    for off in (None, 1.0):
        other, flat = _groups(backbone, layer_decay=off)
        other_head = {id(p) for p in classifier_parameters(other)[1]}
        assert {g["lr"] for i, g in flat.items() if i not in other_head} == {LR}


def test_the_schedule_scales_every_group_from_its_own_rate():
    model = timm.create_model("test_vit", pretrained=False, num_classes=8)
    cfg = TrainConfig(backbone="test_vit", lr=LR, layer_decay=0.5, epochs=2, warmup_epochs=1)
    optimizer, scheduler, _ = build_optimizer(cfg, model, steps_per_epoch=4, use_cuda=False)
    start = [g["lr"] for g in optimizer.param_groups]
    for _ in range(3):
        optimizer.step()
        scheduler.step()
    ratios = {round(g["lr"] / s, 12) for g, s in zip(optimizer.param_groups, start, strict=True)}
    assert len(ratios) == 1 and ratios != {1.0}


def test_layer_decay_on_a_model_without_layer_groups_is_one_line():
    model = torch.nn.Sequential(torch.nn.Linear(4, 8))
    cfg = TrainConfig(backbone="plain", layer_decay=0.8)
    with pytest.raises(UserError, match="layer_decay: plain has no layer groups"):
        build_optimizer(cfg, model, steps_per_epoch=1, use_cuda=False)
