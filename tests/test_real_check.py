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
    foxes = labels.loc[
        labels["label"].str.contains("Fox") & labels["label"].str.contains("Gr"), "filepath"
    ]
    assert len(foxes) == 3
    batch = torch.stack(
        [transform(Image.open(shared_data / "ena24_small" / f).convert("RGB")) for f in foxes]
    )
    with torch.no_grad():
        top1 = model(batch).argmax(dim=1).tolist()
    assert GREY_FOX in top1, f"top-1 classes {top1} for {list(foxes)}"


def test_a_new_head_starts_at_zero_and_a_kept_head_is_loaded(shared_data: Path) -> None:
    """A fresh 8-class head predicts uniformly; the 1000-class ImageNet head keeps its weights,
    the very tensors of the file, as does the backbone under a new head."""
    from safetensors.torch import load_file

    from kaggle_style.models import create_model

    weights = shared_data / "models" / "tf_efficientnet_lite0.in1k.safetensors"
    model = create_model("tf_efficientnet_lite0", 8, str(weights)).eval()
    with torch.no_grad():
        probs = model(torch.randn(2, 3, 64, 64)).softmax(dim=1)
    torch.testing.assert_close(probs, torch.full((2, 8), 1 / 8))
    state = load_file(weights)
    imagenet = create_model("tf_efficientnet_lite0", 1000, str(weights))
    torch.testing.assert_close(
        imagenet.get_classifier().weight, state["classifier.weight"], rtol=0, atol=0
    )
    torch.testing.assert_close(model.conv_stem.weight, state["conv_stem.weight"], rtol=0, atol=0)


def test_camtrapr_folder_becomes_a_drivendata_table_and_its_prior(
    shared_data: Path, tmp_path: Path
) -> None:
    """Every labelled thumbnail once (UNID left out), station = site, species in alphabetical
    order onto the first class slots; the prior baseline is the label entropy of those counts."""
    import numpy as np

    from benchmarks.real_check import build_camtrapr_data, prior_log_loss
    from kaggle_style.task import CONSERVISION_CLASS_INDEX as CLASS_INDEX
    from kaggle_style.task import CONSERVISION_CLASSES as CLASSES

    source = shared_data / "camtrapr"
    files = [p for p in source.glob("*/*/*") if p.suffix.lower() == ".jpg"]
    labelled = [p for p in files if p.parent.name != "UNID"]
    mapping = build_camtrapr_data(source, tmp_path)
    assert list(mapping) == sorted({p.parent.name for p in labelled})
    assert list(mapping.values()) == list(CLASSES[: len(mapping)])
    features = pd.read_csv(tmp_path / "train_features.csv")
    labels = pd.read_csv(tmp_path / "train_labels.csv")
    assert len(features) == len(labels) == len(labelled) == len(files) - 1
    assert sorted(features["site"].unique()) == sorted({p.parent.parent.name for p in files})
    assert (labels[list(CLASSES)].sum(axis=1) == 1).all()
    by_file = dict(zip(features["filepath"], labels[list(CLASSES)].idxmax(axis=1), strict=True))
    assert all(by_file[str(p.resolve())] == mapping[p.parent.name] for p in labelled)
    counts = np.array([sum(p.parent.name == s for p in labelled) for s in mapping], dtype=float)
    y = labels[list(CLASSES)].idxmax(axis=1).map(CLASS_INDEX).to_numpy()
    share = counts / counts.sum()
    assert prior_log_loss(y, 8) == pytest.approx(-(share * np.log(share)).sum(), rel=1e-12)
    # the entropy of 5 unequal classes: below the uniform log(5), above the 2-class log(2)
    assert np.log(2) < prior_log_loss(y, 8) < np.log(len(mapping))
    assert prior_log_loss(np.repeat(np.arange(8), 3), 8) == pytest.approx(np.log(8), rel=1e-12)


def test_real_check_without_shared_data_is_one_line_naming_both_ways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    from benchmarks.real_check import main
    from kaggle_style.constants import SHARED_DATA_ENV

    monkeypatch.delenv(SHARED_DATA_ENV, raising=False)
    assert main(["--work", str(tmp_path / "work")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--shared" in err and SHARED_DATA_ENV in err
    monkeypatch.setenv(SHARED_DATA_ENV, str(tmp_path))  # a folder without camtrapr/
    assert main(["--work", str(tmp_path / "work")]) == 2
    assert "camtrapr" in capsys.readouterr().err
    assert not (tmp_path / "work").exists()


@pytest.mark.slow
def test_pretrained_beats_random_and_prior_on_camtrapr(shared_data: Path, tmp_path: Path) -> None:
    """Pretraining must help on real images (about 8 minutes on 2 CPU cores)."""
    from benchmarks.real_check import real_check

    torch.set_num_threads(2)
    result = real_check(shared_data, tmp_path, ("random_same_recipe", "random", "pretrained"))
    assert result["oof_logloss_pretrained"] < result["oof_logloss_random"]
    assert result["oof_logloss_pretrained"] < result["oof_logloss_random_same_recipe"]
    assert result["oof_logloss_pretrained"] < result["prior_logloss"]
