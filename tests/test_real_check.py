"""Real-image checks: the local ImageNet weights really are ImageNet weights; pretraining helps."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

GREY_FOX = 280  # ImageNet-1k class "grey fox, gray fox, Urocyon cinereoargenteus"


def test_local_imagenet_weights_recognise_a_grey_fox(shared_data: Path) -> None:
    import timm
    from PIL import Image

    from kaggle_style.models import create_model

    torch.set_num_threads(2)
    weights = shared_data / "models" / "tf_efficientnet_lite0.in1k.safetensors"
    model = create_model("tf_efficientnet_lite0", 1000, str(weights)).eval()
    transform = timm.data.create_transform(**timm.data.resolve_model_data_config(model))
    labels = pd.read_csv(shared_data / "ena24_small" / "labels.csv")
    foxes = labels.loc[labels["label"].str.contains("Fox") & labels["label"].str.contains("Gr"),
                       "filepath"]
    assert len(foxes) == 3
    batch = torch.stack([transform(Image.open(shared_data / "ena24_small" / f).convert("RGB"))
                         for f in foxes])
    with torch.no_grad():
        top1 = model(batch).argmax(dim=1).tolist()
    assert GREY_FOX in top1, f"top-1 classes {top1} for {list(foxes)}"


def test_a_new_head_starts_at_zero_and_a_kept_head_is_loaded(shared_data: Path) -> None:
    """A fresh 8-class head predicts uniformly; the 1000-class ImageNet head keeps its weights."""
    from kaggle_style.models import create_model

    weights = str(shared_data / "models" / "tf_efficientnet_lite0.in1k.safetensors")
    model = create_model("tf_efficientnet_lite0", 8, weights).eval()
    with torch.no_grad():
        probs = model(torch.randn(2, 3, 64, 64)).softmax(dim=1)
    torch.testing.assert_close(probs, torch.full((2, 8), 1 / 8))
    imagenet = create_model("tf_efficientnet_lite0", 1000, weights)
    assert imagenet.get_classifier().weight.abs().sum() > 0


@pytest.mark.slow
def test_pretrained_beats_random_and_prior_on_camtrapr(shared_data: Path, tmp_path: Path) -> None:
    """Issue 9's check on real images (about 8 minutes on 2 CPU cores)."""
    from benchmarks.real_check import real_check

    torch.set_num_threads(2)
    result = real_check(shared_data, tmp_path, ("random_same_recipe", "random", "pretrained"))
    assert result["oof_logloss_pretrained"] < result["oof_logloss_random"]
    assert result["oof_logloss_pretrained"] < result["oof_logloss_random_same_recipe"]
    assert result["oof_logloss_pretrained"] < result["prior_logloss"]
