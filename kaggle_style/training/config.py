"""TrainConfig: everything a training run needs. Imports no torch, so configs load instantly."""

from __future__ import annotations

import hashlib
import json
from dataclasses import field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from kaggle_style.config import (
    ConfigError,
    Count,
    Fraction,
    Name,
    NonNegative,
    Positive,
    Whole,
    config_dict,
    stage_config,
)
from kaggle_style.constants import Augment
from kaggle_style.data.cache_forms import CacheForm
from kaggle_style.data.images import MAX_PIXELS
from kaggle_style.training.pseudo_labels import check_pseudo_labels, source_hash

View = Literal["full", "crop", "crop+full"]
ClassWeights = Literal["none", "balanced", "sqrt"]
Precision = Literal["auto", "no", "bf16"]
Tracker = Literal["tensorboard", "wandb", "mlflow", "none"]
NormalizeOn = Literal["auto", "worker", "device"]
AugmentOn = Literal["worker", "device"]
Decay = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
EmaDecay = Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)]
Scale = Annotated[float, Field(ge=1, allow_inf_nan=False)]
DEVICE_AUGMENTATIONS = ("none", "light")  # the ones `training.device_augment` can run

# Keys that change what a fold learns; the others (workers, progress, paths) do not.
NON_MODEL_KEYS = frozenset(
    {
        "name",
        "runs_dir",
        "num_workers",
        "progress",
        "folds",
        "resume",
        "tracker",
        "log_with",
        "cache_dir",
        "search_space",
        "compile",
        "max_steps_per_epoch_eval",
        "log_every",
        "allow_outside_data",
        "normalize_on",
        "grad_checkpointing",
        "task",  # recorded with its classes in config.yaml and checked there (check_record)
    }
)


@stage_config
class TrainConfig:
    """Everything a training run needs; a YAML file in configs/ sets these per model recipe."""

    name: Name = "model"
    """run name: outputs go to RUNS_DIR/NAME/"""
    data: str = "data/demo"
    """DrivenData folder"""
    folds_file: str = "folds/folds.csv"
    """folds file written by `kaggle-style folds`"""
    runs_dir: str = "runs"
    """folder of the runs"""
    cache_dir: str = "cache"
    """folder of the decoded-image caches"""
    # model
    backbone: str = "resnet18"
    """any timm model name"""
    pretrained: bool | str = False
    """false | true (timm hub / HF cache) | path to a weights file"""
    image_size: Count | None = None
    """input side in px (null: the backbone's own input size)"""
    drop_rate: Fraction = 0.0
    """dropout before the classifier head"""
    drop_path_rate: Fraction = 0.0
    """stochastic depth (timm models that have it)"""
    view: View = "full"
    """which pixels: full frame, detector crops at a threshold, or both as two views per image"""
    crops_manifest: str = "crops/manifest.csv"
    """crops manifest of `kaggle-style crop` (view crop or crop+full)"""
    crop_threshold: Fraction = 0.1
    """detection threshold whose crops are used (one of the crop stage's)"""
    # optimisation
    epochs: Count = 3
    """training epochs per fold"""
    batch_size: Count = 32
    """images per optimiser step per process"""
    lr: Positive = 1e-3
    """peak learning rate of the backbone"""
    head_lr_mult: Positive = 1.0
    """the head's rate over the backbone's (a new 8-class head often wants more)"""
    weight_decay: NonNegative = 0.05
    """AdamW weight decay (never on norms, biases, position embeddings or tokens)"""
    layer_decay: Decay | None = None
    """layer-wise rate decay: rate x layer_decay ** (depth - layer); null or 1.0: off"""
    warmup_epochs: NonNegative = 0.0
    """linear warm-up before the cosine decay"""
    min_lr_ratio: Fraction = 0.01
    """the cosine decay's floor, as a share of the peak rate"""
    freeze_epochs: Whole = 0
    """train only the head for the first N epochs (BatchNorm frozen too)"""
    freeze_bn: bool = False
    """keep BatchNorm statistics fixed all run (small data, small batches)"""
    grad_accum: Count = 1
    """batches per optimiser step"""
    label_smoothing: Fraction = 0.0
    """label smoothing of the cross-entropy"""
    class_weights: ClassWeights = "none"
    """loss weights per class, against the rare hog class"""
    mixup_alpha: NonNegative = 0.0
    """mixup's Beta parameter (0: off)"""
    cutmix_alpha: NonNegative = 0.0
    """cutmix's Beta parameter (0: off)"""
    mix_prob: Fraction = 1.0
    """share of batches that are mixed (when mixup or cutmix is on)"""
    ema_decay: EmaDecay = 0.0
    """decay of the weights' moving average (0: no EMA)"""
    # data
    augment: Augment = "light"
    """augmentation preset"""
    augment_strength: NonNegative = 1.0
    """scales the preset's magnitudes"""
    cache_scale: Scale = 1.15
    """cached side over the input side: room for crop augmentation"""
    cache_form: CacheForm = "uint8"
    """how cached images are stored (uint8: fastest reads; jpeg: about 10x less disk)"""
    max_pixels: Count = MAX_PIXELS
    """largest image in pixels; one whose header claims more is a listed bad image"""
    allow_outside_data: bool = False
    """image paths must stay inside `data` unless this is set"""
    num_workers: Annotated[int, Field(ge=-1)] = -1
    """data-loading processes (-1: chosen for the machine)"""
    normalize_on: NormalizeOn = "auto"
    """where images are normalised (auto: uint8 batches on a GPU, in workers on CPU)"""
    augment_on: AugmentOn = "worker"
    """where augmentation runs (device: flips and jitter on the GPU; none/light only)"""
    # run control
    seed: int = 42
    """seed of the run (weights, order, augmentation)"""
    folds: list[int] | None = None
    """train only these folds (null: every fold in the folds file)"""
    tta_hflip: bool = True
    """average predictions over the image and its mirror"""
    mixed_precision: Precision = "auto"
    """mixed precision (auto: bf16 on GPU, fp32 on CPU)"""
    channels_last: bool = True
    """channels-last memory layout (faster convolutions on GPUs)"""
    compile: bool = False
    """torch.compile the model"""
    grad_checkpointing: bool = False
    """recompute activations in backward: less memory, ~30% slower"""
    max_steps_per_epoch: Count | None = None
    """cap of training steps per epoch and process, for smoke tests and quick tuning"""
    max_steps_per_epoch_eval: Count | None = None
    """cap of evaluation steps per epoch, for smoke tests"""
    resume: bool = False
    """continue each unfinished fold from its last checkpoint"""
    progress: bool = True
    """progress bars (off in CI logs)"""
    log_every: Count = 20
    """steps between loss reads (each read waits for the GPU)"""
    tracker: Tracker = "tensorboard"
    """experiment tracker, writing files under the run (offline)"""
    log_with: Tracker | None = None
    """tracker's older name: earlier runs' config.yaml reads back"""
    search_space: dict[str, Any] = field(default_factory=dict)
    """the hyperparameters `tune` searches: key -> {type, low, high, ...}"""
    pseudo_labels: dict[str, Any] | None = None
    """a second round that also learns from the test images (training.pseudo_labels)"""
    task: str | None = None
    """the task file or name (configs/tasks/NAME.yaml); default: what folds recorded beside
    folds_file, else conservision"""

    def __post_init__(self) -> None:
        """Checks across fields (each field's own range is its type), before any image is read."""
        if self.log_with is not None:
            self.tracker, self.log_with = self.log_with, None
        self.pseudo_labels = check_pseudo_labels(self.pseudo_labels)
        if self.warmup_epochs > self.epochs:
            raise ConfigError(
                f"warmup_epochs: {self.warmup_epochs!r} is out of range; it must "
                f"be at most epochs ({self.epochs})",
                "warmup_epochs",
            )
        if self.freeze_epochs > self.epochs:
            raise ConfigError(
                f"freeze_epochs: {self.freeze_epochs!r} is out of range; it must "
                f"be at most epochs ({self.epochs})",
                "freeze_epochs",
            )
        if self.augment_on == "device":
            if self.augment not in DEVICE_AUGMENTATIONS:
                raise ConfigError(
                    f"augment_on: device has no {self.augment!r} augmentation; "
                    f"use augment: {' or '.join(DEVICE_AUGMENTATIONS)}, or "
                    "augment_on: worker",
                    key="augment_on",
                )
            if self.normalize_on == "worker":
                raise ConfigError(
                    "augment_on: device needs uint8 batches; set normalize_on: auto or device",
                    key="augment_on",
                )

    @property
    def run_dir(self) -> Path:
        return Path(self.runs_dir) / self.name


def model_hash(cfg: TrainConfig) -> str:
    """Hash of the keys that change what is learned: a fold trained under another is stale."""
    values = {k: v for k, v in config_dict(cfg).items() if k not in NON_MODEL_KEYS}
    if cfg.pseudo_labels is not None:  # what the pseudo-labels are, not only where they live
        values["pseudo_labels"] = {
            **cfg.pseudo_labels,
            "source": source_hash(cfg.pseudo_labels, cfg.runs_dir),
        }
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


def model_differences(old: dict[str, Any], cfg: TrainConfig) -> list[str]:
    """`key: old -> new` for each learning key that differs from a saved resolved config."""
    new = config_dict(cfg)
    return [
        f"{k}: {old.get(k)!r} -> {new[k]!r}"
        for k in sorted(new)
        if k not in NON_MODEL_KEYS and old.get(k) != new[k]
    ]
