"""The one inference function: validation, OOF, test and `predict` on new images all use it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from kaggle_style.constants import ID_COL

if TYPE_CHECKING:
    from accelerate import Accelerator


@torch.no_grad()
def predict_probs(
    model: torch.nn.Module,
    loader: Iterable[tuple[torch.Tensor, Any]],
    accelerator: Accelerator,
    tta_hflip: bool,
    channels_last: bool,
    max_steps: int | None = None,
    normalize: Callable[[torch.Tensor], torch.Tensor] | None = None,
    num_classes: int = 0,
) -> np.ndarray:
    """Softmax probabilities (float64) for every sample of `loader`, in order.

    With `tta_hflip` it averages the probabilities of the image and its mirror. Under several
    processes `gather_for_metrics` returns every sample once, in the loader's order. `normalize`
    turns uint8 batches into the model's input (`training.data.batch_normalizer`); `num_classes`
    shapes the empty result of an empty loader.
    """
    model.eval()
    outputs = []
    for step, (images, _) in enumerate(loader):
        if max_steps is not None and step >= max_steps:
            break
        if normalize is not None:
            images = normalize(images)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with accelerator.autocast():
            probs = model(images).float().softmax(dim=1)
            if tta_hflip:
                probs = (probs + model(images.flip(3)).float().softmax(dim=1)) / 2
        # kept on the device: a `.cpu()` per batch would wait for it before queueing the next
        outputs.append(accelerator.gather_for_metrics(probs))
    if not outputs:
        return np.zeros((0, num_classes))
    return torch.cat(outputs).cpu().double().numpy()


def per_image(probs: np.ndarray, ids: np.ndarray, classes: tuple[str, ...]) -> pd.DataFrame:
    """Mean over an image's views (crops, full frame), renormalised; rows in first-seen order."""
    frame = pd.DataFrame(probs, columns=list(classes))
    mean = frame.groupby(pd.Index(ids, name=ID_COL), sort=False).mean()
    mean = mean.div(mean.sum(axis=1), axis=0)
    return mean.reset_index()
