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


@pytest.mark.slow
@pytest.mark.xfail(
    reason="known open (issue 9): measured 2026-11-27 the pretrained recipe beats random weights "
    "(2.25 vs 4.11) but not the class prior (1.46); the recipe still needs tuning",
    strict=False,
)
def test_pretrained_beats_random_and_prior_on_camtrapr(shared_data: Path, tmp_path: Path) -> None:
    from kaggle_style.real_check import real_check

    torch.set_num_threads(2)
    result = real_check(shared_data, tmp_path)
    assert result["oof_logloss_pretrained"] < result["oof_logloss_random"]
    assert result["oof_logloss_pretrained"] < result["prior_logloss"]
