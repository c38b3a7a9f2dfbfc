"""timm backbones by name, with pretrained weights from the hub, its cache or a local file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

from kaggle_style.errors import UserError


class PretrainedWeightsError(UserError):
    """Pretrained weights were asked for but cannot be had (offline, or a missing file)."""


def create_model(
    backbone: str,
    num_classes: int,
    pretrained: bool | str = False,
    image_size: int | None = None,
    **kwargs: Any,
) -> nn.Module:
    """A timm model with an `num_classes` head.

    `pretrained` is False (random init), True (timm's hub weights, or the local Hugging Face cache
    when HF_HUB_OFFLINE=1) or a path to a safetensors / state-dict file, loaded through timm's
    `pretrained_cfg_overlay=dict(file=...)` so that timm adapts the stem and drops the classifier
    exactly as it would for hub weights.
    """
    # Families without stochastic depth (VGG, DenseNet, Inception) reject the argument itself.
    if not kwargs.get("drop_path_rate"):
        kwargs.pop("drop_path_rate", None)
    if image_size and _has_fixed_size(backbone, image_size):
        # ViT-like models build position embeddings for one size; timm resamples them on load
        kwargs["img_size"] = image_size
    if not timm.is_model(backbone):
        close = timm.list_models(f"*{backbone.split('.')[0].split('_')[0]}*")[:8]
        raise UserError(
            f"unknown timm backbone {backbone!r}; similar names: {', '.join(close)}; "
            "set backbone to a name from `timm.list_models()`"
        )
    if isinstance(pretrained, str) and pretrained.lower() in ("true", "false"):
        pretrained = pretrained.lower() == "true"
    if isinstance(pretrained, str | os.PathLike):
        path = Path(pretrained).expanduser()
        if not path.is_file():
            raise PretrainedWeightsError(
                f"pretrained weights file {path} does not exist: place the {backbone} weights "
                "(safetensors or a PyTorch state dict with timm key names) there, or set "
                "`pretrained: false`"
            )
        return zero_head(
            timm.create_model(
                backbone,
                pretrained=True,
                num_classes=num_classes,
                pretrained_cfg_overlay={"file": str(path.resolve())},
                **kwargs,
            )
        )
    if not pretrained:
        return timm.create_model(backbone, pretrained=False, num_classes=num_classes, **kwargs)
    try:
        return zero_head(
            timm.create_model(backbone, pretrained=True, num_classes=num_classes, **kwargs)
        )
    except Exception as err:  # hub errors come in many types; all mean "no weights here"
        raise PretrainedWeightsError(_offline_help(backbone, err)) from err


def zero_head(model: nn.Module) -> nn.Module:
    """Start a new classifier's last layer at zero: uniform predictions, no random opinion.

    Why: timm initialises a fresh head for training from scratch (EfficientNet's head gives
    logits with a standard deviation of about 2 on pretrained features), so on a small dataset
    fine-tuning spends its few steps undoing a confident random classifier, and a short
    head-only warm-up ends worse than the class prior. A zero head is the usual fine-tuning start.
    """
    kept = getattr(model, "pretrained_cfg", {}).get("num_classes") == model.num_classes
    get_classifier = getattr(model, "get_classifier", None)  # timm models have one
    head = get_classifier() if get_classifier is not None else None
    if kept or not isinstance(head, nn.Module):  # kept: timm loaded the weights' own head
        return model
    layers = [m for m in head.modules() if isinstance(m, nn.Linear | nn.Conv2d)]
    if layers:  # only the last layer: zeroing every layer of an MLP head would stop its gradients
        with torch.no_grad():
            layers[-1].weight.zero_()
            if layers[-1].bias is not None:
                layers[-1].bias.zero_()
    return model


def _has_fixed_size(backbone: str, image_size: int) -> bool:
    """True where the backbone's default size differs and its class takes `img_size`."""
    cfg = timm.models.get_pretrained_cfg(backbone)
    if cfg is None or cfg.input_size[-1] == image_size:
        return False
    try:
        with torch.device("meta"):  # a probe that costs no memory, even for EVA-02 Large
            timm.create_model(backbone, pretrained=False, img_size=image_size, num_classes=1)
    except TypeError:
        return False
    return True


def _offline_help(backbone: str, err: Exception) -> str:
    cfg = timm.models.get_pretrained_cfg(backbone)
    hub_id = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
    source = f"https://huggingface.co/{hub_id}" if hub_id else "the model's source"
    return (
        f"could not load pretrained weights for {backbone} ({type(err).__name__}: {err}).\n"
        f"Offline, download `model.safetensors` from {source} on a machine with internet, "
        f"copy it here (e.g. to weights/{backbone}.safetensors) and set "
        f"`pretrained: weights/{backbone}.safetensors` in the config (or --set "
        f"pretrained=weights/{backbone}.safetensors); or fill the Hugging Face cache "
        "(HF_HOME) and set HF_HUB_OFFLINE=1; or train from scratch with `pretrained: false`."
    )


def data_config(model: nn.Module, image_size: int | None = None) -> dict[str, Any]:
    """Mean, std, interpolation and input size the backbone was trained with."""
    cfg = timm.data.resolve_model_data_config(model)
    if image_size:
        cfg["input_size"] = (cfg["input_size"][0], image_size, image_size)
    return cfg


def classifier_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(backbone, head) parameters, for separate learning rates and a frozen-backbone warm-up."""
    get_classifier = getattr(model, "get_classifier", None)
    head_ids = (
        {id(p) for p in get_classifier().parameters()} if get_classifier is not None else set()
    )
    backbone = [p for p in model.parameters() if id(p) not in head_ids]
    head = [p for p in model.parameters() if id(p) in head_ids]
    return backbone, head


def load_weights(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load our own checkpoint (safetensors) into a model built from the same config."""
    from safetensors.torch import load_file

    state = load_file(str(path), device="cpu")
    model.load_state_dict(state)
    return model


def freeze(params: list[nn.Parameter], frozen: bool) -> None:
    for p in params:
        p.requires_grad_(not frozen)


def batch_norm_eval(model: nn.Module) -> None:
    """Put every BatchNorm layer in eval mode (running statistics used, never updated).

    Why: with a frozen backbone, train-mode BatchNorm normalises by the statistics of each small
    batch, so the head learns on features that evaluation (running statistics) never produces;
    on a few hundred images that mismatch alone can make predictions confidently wrong.
    """
    for layer in model.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layer.eval()
