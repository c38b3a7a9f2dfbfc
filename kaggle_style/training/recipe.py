"""How a model learns: loss, class weights, mixing, optimizer and schedule, one optimisation step.

Two pieces stay ours rather than timm's, each for a guarantee:
- `mix_batch`: timm's `Mixup` draws from the global NumPy RNG; ours draws from the epoch's own
  generator, so a resumed run mixes exactly as an uninterrupted one.
- `lr_lambda` in torch's `LambdaLR`: one formula per optimizer update, sized from the prepared
  (per-process) loader, so N processes follow the single-process schedule; timm's
  `CosineLRScheduler` counts in epochs or needs its own update counter to stay in step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeGuard

import numpy as np
import torch
import torch.nn.functional as F

from kaggle_style.training.config import TrainConfig

if TYPE_CHECKING:
    from accelerate import Accelerator


def mixed_precision(choice: str, use_cuda: bool) -> str:
    """Accelerate's precision for a config value: bf16 on GPU needs no loss scaler; fp16 is never
    chosen for the user."""
    if choice == "auto":
        return "bf16" if use_cuda else "no"
    return choice


def accelerator_settings(use_cuda: bool, precision: str = "auto") -> dict[str, Any]:
    """What every `Accelerator` here is built with. `non_blocking` on a GPU: a blocking copy of
    the (pinned) batch waits for the queued step, so the GPU idles while each batch crosses."""
    from accelerate.utils import DataLoaderConfiguration

    return {
        "mixed_precision": mixed_precision(precision, use_cuda),
        "cpu": not use_cuda,
        "dataloader_config": DataLoaderConfiguration(non_blocking=use_cuda),
    }


def class_weight_vector(labels: np.ndarray, mode: str, num_classes: int) -> torch.Tensor:
    counts = np.maximum(np.bincount(labels, minlength=num_classes).astype(float), 1.0)
    weights = {
        "none": lambda: np.ones(num_classes),
        "balanced": lambda: counts.sum() / (num_classes * counts),
        "sqrt": lambda: np.sqrt(counts.sum() / (num_classes * counts)),
    }[mode]()
    return torch.tensor(weights / weights.mean(), dtype=torch.float32)


def soft_targets(labels: torch.Tensor, smoothing: float, num_classes: int) -> torch.Tensor:
    soft = F.one_hot(labels, num_classes).float()
    return soft * (1 - smoothing) + smoothing / num_classes


def soft_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Cross-entropy with soft targets (smoothing, mixup) and class weights in one formula."""
    log_probs = F.log_softmax(logits.float(), dim=1)
    per_sample = -(targets * log_probs).sum(dim=1)
    sample_weight = (targets * weights).sum(dim=1)
    return (per_sample * sample_weight).sum() / sample_weight.sum()


def mix_batch(
    images: torch.Tensor, targets: torch.Tensor, cfg: TrainConfig, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup or CutMix (chosen at random when both are on), from the epoch's own generator."""
    use = [a for a in (("mixup", cfg.mixup_alpha), ("cutmix", cfg.cutmix_alpha)) if a[1] > 0]
    if not use or rng.random() > cfg.mix_prob:
        return images, targets
    kind, alpha = use[rng.integers(len(use))]
    lam = float(rng.beta(alpha, alpha))
    # non_blocking: a plain copy from pageable memory would wait for the queued steps
    perm = torch.from_numpy(rng.permutation(images.shape[0])).to(images.device, non_blocking=True)
    if kind == "mixup":
        mixed = images * lam + images[perm] * (1 - lam)
    else:
        h, w = images.shape[-2:]
        cut_h, cut_w = int(h * math.sqrt(1 - lam)), int(w * math.sqrt(1 - lam))
        cy, cx = int(rng.integers(h)), int(rng.integers(w))
        y0, y1 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, h)
        x0, x1 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, w)
        mixed = images.clone()
        mixed[..., y0:y1, x0:x1] = images[perm][..., y0:y1, x0:x1]
        lam = 1 - (y1 - y0) * (x1 - x0) / (h * w)
    return mixed, targets * lam + targets[perm] * (1 - lam)


def lr_lambda(total_steps: int, warmup_steps: int, min_ratio: float) -> Callable[[int], float]:
    """Linear warm-up, then cosine decay to `min_ratio` of the peak rate."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return factor


def build_optimizer(
    cfg: TrainConfig, model: torch.nn.Module, steps_per_epoch: int, use_cuda: bool
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR, list[torch.nn.Parameter]]:
    """AdamW from timm's factory with a per-update cosine schedule.

    timm makes the groups: no weight decay on norms, biases and the model's `no_weight_decay()`
    (position embeddings, tokens), and with `layer_decay` a rate of `layer_decay ** (depth -
    layer)` per layer of its `group_matcher`. The head's groups take `head_lr_mult` on top.
    `steps_per_epoch` is what one process takes (the prepared loader's length, capped), so the
    schedule ends where the single-process one does whatever the number of processes.
    """
    from timm.optim import create_optimizer_v2

    from kaggle_style.models import classifier_parameters

    backbone_params, head_params = classifier_parameters(model)
    optimizer = create_optimizer_v2(
        model,
        opt="adamw",
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        filter_bias_and_bn=True,
        param_group_fn=lambda m: _param_groups(m, cfg, {id(p) for p in head_params}),
        fused=use_cuda,
    )
    updates_per_epoch = max(1, math.ceil(steps_per_epoch / cfg.grad_accum))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lr_lambda(
            updates_per_epoch * cfg.epochs,
            int(updates_per_epoch * cfg.warmup_epochs),
            cfg.min_lr_ratio,
        ),
    )
    return optimizer, scheduler, backbone_params


def _param_groups(
    model: torch.nn.Module, cfg: TrainConfig, head_ids: set[int]
) -> list[dict[str, Any]]:
    """timm's weight-decay (and layer-decay) groups, each split into backbone and head, with
    `lr` set from `lr_scale`: our LambdaLR scales each group's own starting rate, where timm's
    schedulers would read `lr_scale` themselves."""
    from timm.optim import param_groups_layer_decay, param_groups_weight_decay

    no_decay: set[str] = getattr(model, "no_weight_decay", set)()
    if layer_decay_on(cfg.layer_decay):
        if not hasattr(model, "group_matcher"):
            from kaggle_style.errors import UserError

            raise UserError(
                f"layer_decay: {cfg.backbone} has no layer groups (timm's "
                "group_matcher); set layer_decay: null"
            )
        groups = param_groups_layer_decay(
            model, cfg.weight_decay, no_weight_decay_list=no_decay, layer_decay=cfg.layer_decay
        )
    else:
        groups = param_groups_weight_decay(model, cfg.weight_decay, no_weight_decay_list=no_decay)
    out = []
    for group in groups:
        scale = group.get("lr_scale", 1.0)
        for head in (False, True):
            params = [p for p in group["params"] if (id(p) in head_ids) == head]
            if params:
                mult = scale * (cfg.head_lr_mult if head else 1.0)
                out.append({**group, "params": params, "lr_scale": mult, "lr": cfg.lr * mult})
    return out


def layer_decay_on(value: float | None) -> TypeGuard[float]:
    """None and 1.0 both mean every layer learns at the same rate."""
    return value is not None and value != 1.0


def optimisation_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    accelerator: Accelerator,
    images: torch.Tensor,
    soft: torch.Tensor,
    weights: torch.Tensor,
    chunks: int = 1,
) -> torch.Tensor:
    """Forward, loss, backward and (when the accumulation window closes) the optimizer step.

    `chunks` > 1 runs the batch as that many micro-batches whose gradients add up, each loss
    weighted by its share of the batch (see `training.memory`). The trainer and the benchmark's
    model-only bound both take exactly this step. Returns the loss without reading it, so
    nothing waits for the device.
    """
    total = torch.zeros((), device=images.device)
    with accelerator.accumulate(model):
        parts = images.chunk(chunks)
        # per-row weights (pseudo-label runs) are cut with their rows; class weights are shared
        part_weights = weights.chunk(chunks) if weights.ndim == 2 else [weights] * len(parts)
        for part, part_soft, part_w in zip(parts, soft.chunk(chunks), part_weights, strict=True):
            with accelerator.autocast():
                logits = model(part)
            loss = soft_cross_entropy(logits, part_soft, part_w)
            if chunks > 1:
                loss = loss * (part.shape[0] / images.shape[0])
            accelerator.backward(loss)
            total += loss.detach()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return total
