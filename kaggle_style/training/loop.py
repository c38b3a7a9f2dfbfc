"""One fold: build, prepare, train epoch by epoch with checkpoints, predict OOF and test."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from kaggle_style.config import config_dict
from kaggle_style.constants import FOLD_COL, ID_COL, LABEL_COL
from kaggle_style.files import atomic_path, disk_guard
from kaggle_style.metrics import log_loss
from kaggle_style.training.checkpoint import RUNS_FIX, Checkpoints
from kaggle_style.training.config import NON_MODEL_KEYS, TrainConfig, model_differences, model_hash
from kaggle_style.training.data import (
    FoldInputs,
    batch_normalizer,
    fold_loaders,
    make_test_loader,
    normalize_on_device,
)
from kaggle_style.training.device_augment import DeviceAugment
from kaggle_style.training.inference import per_image, predict_probs
from kaggle_style.training.memory import MemoryFit, grad_checkpointing
from kaggle_style.training.pseudo_labels import split_weights
from kaggle_style.training.recipe import (
    accelerator_settings,
    build_optimizer,
    class_weight_vector,
    mix_batch,
    optimisation_step,
    soft_targets,
)
from kaggle_style.training.tracking import FoldTracking, LossLogger

if TYPE_CHECKING:
    from accelerate import Accelerator
    from timm.utils import ModelEmaV3

EpochCallback = Callable[[int, int, float], None]  # (fold, epoch, val_log_loss)


@dataclass
class FoldResult:
    fold: int
    oof: pd.DataFrame  # id, classes, fold
    test: pd.DataFrame | None
    history: list[float]
    last_lr: float | None  # the backbone's rate after the last step (None: resumed when done)
    batch_fit: dict[str, int] | None = None  # the micro-batch and accumulation that fit


def make_accelerator(cfg: TrainConfig) -> Accelerator:
    from accelerate import Accelerator

    use_cuda = torch.cuda.is_available()
    return Accelerator(
        **accelerator_settings(use_cuda, cfg.mixed_precision),
        gradient_accumulation_steps=cfg.grad_accum,
        project_dir=str(cfg.run_dir),
    )


def train_fold(
    prep: FoldInputs, fold: int, accelerator: Accelerator, on_epoch_end: EpochCallback | None = None
) -> FoldResult:
    """Train on every fold but `fold`; predict `fold` (OOF) and the test set."""
    from accelerate.utils import set_seed

    from kaggle_style.models import batch_norm_eval, create_model, freeze

    cfg = prep.cfg
    use_cuda = accelerator.device.type == "cuda"
    # Seed before the model is built so a fold's initial weights do not depend on which folds ran
    # before it in this process (and so a resumed fold rebuilds the same model).
    set_seed(cfg.seed + fold)
    data = fold_loaders(prep, fold, use_cuda)
    model = create_model(
        cfg.backbone,
        len(prep.classes),
        cfg.pretrained,
        image_size=cfg.image_size,
        drop_rate=cfg.drop_rate,
        drop_path_rate=cfg.drop_path_rate,
    )
    grad_checkpointing(model, cfg.grad_checkpointing, cfg.backbone)
    channels_last = cfg.channels_last and use_cuda
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    ema = None
    if cfg.ema_decay > 0:
        from timm.utils import ModelEmaV3

        ema = ModelEmaV3(model, decay=cfg.ema_decay)
    model, train_loader, val_loader = accelerator.prepare(model, data.train_loader, data.val_loader)
    # The schedule is sized from the prepared loader: what one process steps through per epoch.
    steps = min(len(train_loader), cfg.max_steps_per_epoch or len(train_loader))
    optimizer, scheduler, backbone_params = build_optimizer(
        cfg, accelerator.unwrap_model(model), steps, use_cuda
    )
    optimizer = accelerator.prepare(optimizer)
    if cfg.compile:
        model = torch.compile(model)  # type: ignore[assignment]  # an OptimizedModule: a Module
    weights = class_weight_vector(data.train_targets, cfg.class_weights, len(prep.classes)).to(
        accelerator.device
    )
    normalize = batch_normalizer(
        prep.data_cfg,
        normalize_on_device(cfg.normalize_on, use_cuda, cfg.augment_on),
        accelerator.device,
    )
    augment = (
        DeviceAugment(cfg.augment, cfg.augment_strength) if cfg.augment_on == "device" else None
    )

    key = model_hash(cfg)
    checkpoints = Checkpoints(cfg.run_dir / f"fold{fold}" / "checkpoints")
    start_epoch = 0
    history: list[float] = []
    latest = checkpoints.latest()
    if latest is not None and cfg.resume:
        checkpoints.check_same_config(latest, key, lambda old: model_differences(old, cfg))
        done_epoch, history = checkpoints.load(
            latest, accelerator.unwrap_model(model), optimizer, scheduler, ema
        )
        start_epoch = done_epoch + 1
        accelerator.print(f"fold {fold}: resumed after epoch {done_epoch + 1} from {latest}")
    track = FoldTracking(cfg, fold, accelerator, steps, start_epoch)

    eval_model = ema.module if ema is not None else model
    fit = MemoryFit(cfg.batch_size, cfg.grad_accum, accelerator.print)
    val_probs, last_lr = None, None
    for epoch in range(start_epoch, cfg.epochs):
        # Accelerate's loader overrides the sampler's epoch with its own iteration counter, which
        # restarts at 0 after a resume: set the epoch on the prepared loader itself.
        train_loader.set_epoch(epoch)
        # Per-epoch seeds make dropout and mixing reproducible after a resume, with no RNG state.
        torch.manual_seed(cfg.seed * 100_003 + fold * 1_009 + epoch)
        freeze(backbone_params, frozen=epoch < cfg.freeze_epochs)
        model.train()
        if cfg.freeze_bn or epoch < cfg.freeze_epochs:
            batch_norm_eval(model)
        train_one_epoch(
            cfg,
            fold,
            epoch,
            model,
            train_loader,
            optimizer,
            scheduler,
            ema,
            accelerator,
            weights,
            steps,
            channels_last,
            normalize,
            augment,
            fit,
            track.losses(epoch),
        )
        last_lr = float(scheduler.get_last_lr()[0])
        val_probs = predict_probs(
            eval_model,
            val_loader,
            accelerator,
            cfg.tta_hflip,
            channels_last,
            cfg.max_steps_per_epoch_eval,
            normalize,
            len(prep.classes),
        )
        val_frame = per_image(
            val_probs, prep.train_samples.ids[data.val_rows][: len(val_probs)], prep.classes
        )
        val_loss = log_loss(
            np.array([prep.label_of[i] for i in val_frame[ID_COL]]),
            val_frame[list(prep.classes)].to_numpy(),
        )
        history.append(val_loss)
        accelerator.print(
            f"fold {fold} epoch {epoch + 1}/{cfg.epochs}: val log loss {val_loss:.4f}"
        )
        track.epoch(epoch, val_frame, prep.label_of, prep.classes)
        if accelerator.is_main_process:
            learning = {k: v for k, v in config_dict(cfg).items() if k not in NON_MODEL_KEYS}
            checkpoints.save(
                epoch,
                accelerator.unwrap_model(model),
                optimizer,
                scheduler,
                ema,
                history,
                key,
                learning,
            )
        accelerator.wait_for_everyone()
        if on_epoch_end is not None:
            on_epoch_end(fold, epoch, val_loss)

    if val_probs is None or cfg.max_steps_per_epoch_eval is not None:
        # The last epoch's check saw only part of the fold (or ran in an earlier process).
        val_probs = predict_probs(
            eval_model,
            val_loader,
            accelerator,
            cfg.tta_hflip,
            channels_last,
            normalize=normalize,
            num_classes=len(prep.classes),
        )
    oof = _oof_frame(prep, fold, val_probs, data.val_rows)
    test = None
    if prep.test_cache is not None:
        keep = prep.test_cache.ok
        probs = predict_probs(
            eval_model,
            accelerator.prepare(make_test_loader(prep, use_cuda)),
            accelerator,
            cfg.tta_hflip,
            channels_last,
            normalize=normalize,
            num_classes=len(prep.classes),
        )
        test = per_image(probs[keep], prep.test_samples.ids[keep], prep.classes)
    if accelerator.is_main_process:
        from safetensors.torch import save_model

        # Renamed into place, so a fold's model file is whole before `done.json` names it done.
        fold_dir = cfg.run_dir / f"fold{fold}"
        with (
            atomic_path(fold_dir / "model.safetensors") as tmp,
            disk_guard(fold_dir, "the fold's model", RUNS_FIX),
        ):
            save_model(accelerator.unwrap_model(eval_model), str(tmp))
    track.close()
    return FoldResult(
        fold=fold, oof=oof, test=test, history=history, last_lr=last_lr, batch_fit=fit.record()
    )


def train_one_epoch(
    cfg: TrainConfig,
    fold: int,
    epoch: int,
    model: torch.nn.Module,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    ema: ModelEmaV3 | None,
    accelerator: Accelerator,
    weights: torch.Tensor,
    steps: int,
    channels_last: bool,
    normalize: Callable[[torch.Tensor], torch.Tensor],
    augment: DeviceAugment | None = None,
    fit: MemoryFit | None = None,
    on_loss: LossLogger | None = None,
) -> None:
    """One pass over the training loader: prepare'd objects, accumulate, backward."""
    mix_rng = np.random.default_rng([cfg.seed, fold, epoch, 7])
    num_classes = len(weights)  # one class weight per class
    bar = tqdm(
        total=steps,
        desc=f"fold {fold} epoch {epoch + 1}/{cfg.epochs}",
        disable=not (cfg.progress and accelerator.is_local_main_process),
        leave=False,
    )
    running, since, where = torch.zeros((), device=accelerator.device), 0, ""
    fit = fit or MemoryFit(cfg.batch_size, cfg.grad_accum, accelerator.print)
    for step, (images, labels) in enumerate(loader):
        if step >= steps:
            break
        if augment is not None:
            images = augment(images, (cfg.seed, fold, epoch, step, accelerator.process_index))
        images = normalize(images)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        # vectors (pseudo-label runs) carry their smoothing and, last, each sample's weight
        targets = (
            labels if labels.ndim == 2 else soft_targets(labels, cfg.label_smoothing, num_classes)
        )
        images, targets = mix_batch(images, targets, cfg, mix_rng)
        running += fit.run(
            partial(
                optimisation_step,
                model,
                optimizer,
                accelerator,
                images,
                *split_weights(targets, weights),
            ),
            optimizer,
            model,
        )
        if accelerator.sync_gradients:
            scheduler.step()
            if ema is not None:
                ema.update(accelerator.unwrap_model(model))
        since += 1
        where = f"fold {fold}, epoch {epoch + 1}, step {step + 1}"
        # Reading the loss waits for the GPU, so it is read every `log_every` steps, not each one.
        if since == cfg.log_every:
            _read_loss(running, since, where, bar, float(scheduler.get_last_lr()[0]), on_loss, step)
            since = 0
        bar.update(1)
    if since:
        _read_loss(running, since, where, bar, float(scheduler.get_last_lr()[0]), on_loss, step)
    bar.close()


def _read_loss(
    running: torch.Tensor,
    steps: int,
    where: str,
    bar: tqdm[Any],
    lr: float,
    on_loss: LossLogger | None = None,
    step: int = 0,
) -> None:
    """Mean loss of the last `steps` steps onto the progress bar; stop on a non-finite one."""
    mean = running.item() / steps
    running.zero_()
    if not math.isfinite(mean):
        raise FloatingPointError(
            f"non-finite loss ({mean}) at {where} (or up to {steps - 1} steps before): lower lr, "
            "check the inputs, or use bf16 rather than fp16"
        )
    bar.set_postfix(loss=f"{mean:.3f}", lr=f"{lr:.2e}")
    if on_loss is not None:
        on_loss(step, mean, lr)


def _oof_frame(
    prep: FoldInputs, fold: int, probs: np.ndarray, val_rows: np.ndarray
) -> pd.DataFrame:
    """OOF rows for every image of the fold; an image with no readable view gets the prior."""
    frame = per_image(probs, prep.train_samples.ids[val_rows], prep.classes)
    fold_ids = prep.folds.loc[prep.folds[FOLD_COL] == fold, ID_COL]
    missing = sorted(set(fold_ids) - set(frame[ID_COL]))
    if missing:
        train_labels = prep.folds.loc[prep.folds[FOLD_COL] != fold, LABEL_COL]
        prior = train_labels.value_counts(normalize=True).reindex(list(prep.classes)).fillna(0)
        prior = (prior + 1e-3) / (prior + 1e-3).sum()
        fill = pd.DataFrame([prior.to_numpy()] * len(missing), columns=list(prep.classes))
        fill.insert(0, ID_COL, missing)
        frame = pd.concat([frame, fill], ignore_index=True)
    frame = frame.set_index(ID_COL).loc[fold_ids.tolist()].reset_index()
    frame[FOLD_COL] = fold
    return frame
