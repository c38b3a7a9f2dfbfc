"""`kaggle-style predict` on a new folder of images: sites from folders, bad images, ensembles."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kaggle_style.cli import main
from kaggle_style.config import resolve_config
from kaggle_style.constants import CLASSES, SITE_COL
from kaggle_style.data.tables import load_competition_data
from kaggle_style.io import write_json
from kaggle_style.training.config import TrainConfig
from kaggle_style.training.run import run_training

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_run(tiny_data: Path, tiny_folds: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained 3-fold test_resnet run on the tiny data (full frames)."""
    tmp = tmp_path_factory.mktemp("predict_run")
    cfg = resolve_config(TrainConfig, REPO / "configs" / "tiny-cpu.yaml", {
        "name": "tiny", "data": str(tiny_data), "folds_file": str(tiny_folds),
        "runs_dir": str(tmp / "runs"), "cache_dir": str(tmp / "cache"), "progress": False})
    run_training(cfg)
    return cfg.run_dir


@pytest.fixture(scope="module")
def new_deployment(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny test images split into two site folders, plus one corrupt file."""
    folder = tmp_path_factory.mktemp("deployment") / "images"
    test = load_competition_data(tiny_data).test
    for k, filepath in enumerate(test["filepath"]):
        site = folder / ("siteA" if k % 2 else "siteB")
        site.mkdir(parents=True, exist_ok=True)
        shutil.copy(tiny_data / filepath, site / Path(filepath).name)
    (folder / "siteA" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return folder


def _check_output(out: pd.DataFrame, n_good: int) -> None:
    probs = out[list(CLASSES)].to_numpy()
    assert len(out) == n_good
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    assert (probs >= 0).all()
    assert list(out["top_class"]) == [CLASSES[i] for i in probs.argmax(axis=1)]
    np.testing.assert_allclose(out["top_prob"], probs.max(axis=1))


def test_predict_folder_with_sites_and_a_bad_image(
    tiny_run: Path, new_deployment: Path, tiny_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "pred" / "predictions.csv"
    code = main(["predict", "--images", str(new_deployment), "--run", str(tiny_run),
                 "--site-from-folder", "--out", str(out), "--quiet"])
    assert code == 0
    frame = pd.read_csv(out)
    n_test = len(load_competition_data(tiny_data).test)
    _check_output(frame, n_test)
    assert list(frame.columns[:2]) == ["file", SITE_COL]
    assert set(frame[SITE_COL]) == {"siteA", "siteB"}
    assert (frame["file"].str.split("/").str[0] == frame[SITE_COL]).all()
    assert "siteA/broken.jpg" not in set(frame["file"])
    bad = pd.read_csv(out.parent / "bad_images.csv")
    assert list(bad["file"]) == ["siteA/broken.jpg"]
    assert bad["error"].str.contains("broken.jpg").all()


def test_ensemble_run_blends_members_and_adapts_sites(
    tiny_run: Path, new_deployment: Path, tmp_path: Path
) -> None:
    """A two-member ensemble of the same run gives that run's predictions, then site-adapted."""
    from kaggle_style.ensemble.sites import adapt_site_priors

    single = tmp_path / "single.csv"
    assert main(["predict", "--images", str(new_deployment), "--run", str(tiny_run),
                 "--site-from-folder", "--out", str(single), "--quiet"]) == 0
    prior = {c: 1 / len(CLASSES) for c in CLASSES}
    ens = tmp_path / "runs" / "ens"
    write_json(ens / "ensemble.json", {
        "runs": {"a": str(tiny_run), "b": str(tiny_run)}, "method": "weighted",
        "space": "logprob", "weights": {"a": 0.3, "b": 0.7}, "temperature": 1.0,
        "site_adapt": {"applied": True, "strength": 3.0, "source_prior": prior},
    })
    out = tmp_path / "ens.csv"
    assert main(["predict", "--images", str(new_deployment), "--run", str(ens),
                 "--site-from-folder", "--out", str(out), "--quiet"]) == 0
    base, blended = pd.read_csv(single), pd.read_csv(out)
    assert list(blended["file"]) == list(base["file"])
    expected, _ = adapt_site_priors(base[list(CLASSES)].to_numpy(), base[SITE_COL].to_numpy(),
                                    np.array(list(prior.values())), 3.0)
    np.testing.assert_allclose(blended[list(CLASSES)].to_numpy(), expected, atol=1e-6)
    _check_output(blended, len(base))


def test_crop_trained_run_without_detector_falls_back_with_warning(
    tiny_run: Path, new_deployment: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    crop_run = tmp_path / "crop_run"
    shutil.copytree(tiny_run, crop_run)
    config = crop_run / "config.yaml"
    config.write_text(config.read_text().replace("view: full", "view: crop"))
    out = tmp_path / "crop.csv"
    assert main(["predict", "--images", str(new_deployment), "--run", str(crop_run),
                 "--no-detector", "--out", str(out), "--quiet"]) == 0
    assert "using full frames" in capsys.readouterr().err
    frame = pd.read_csv(out)
    assert SITE_COL not in frame.columns
    _check_output(frame, len(frame))


def test_predict_refuses_a_run_whose_folds_mix_configs(
    tiny_run: Path, new_deployment: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    mixed = tmp_path / "mixed"
    shutil.copytree(tiny_run, mixed)
    done = mixed / "fold1" / "done.json"
    done.write_text(done.read_text().replace('"model_hash": "', '"model_hash": "x', 1))
    code = main(["predict", "--images", str(new_deployment), "--run", str(mixed),
                 "--out", str(tmp_path / "p.csv"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "2 different configs" in err[0] and str(mixed) in err[0]


@pytest.mark.slow
def test_predict_real_conservision_images(tiny_run: Path, shared_data: Path,
                                          tmp_path: Path) -> None:
    images = shared_data / "tai_images"
    out = tmp_path / "tai.csv"
    assert main(["predict", "--images", str(images), "--run", str(tiny_run), "--out", str(out),
                 "--quiet"]) == 0
    frame = pd.read_csv(out)
    n_images = len([p for p in images.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg")])
    _check_output(frame, n_images)
    # a field user gets the info-bar clock too: the meta stage's reader, on the real frames
    when = frame.set_index("file")["datetime"]
    assert when["ZJ000006.jpg"] == "2017-03-19T05:37:45"
    assert when["ZJ000014.jpg"] == "2016-11-13T15:59:55"
    assert {"hour", "night", "sequence"} <= set(frame.columns)
    assert not (tmp_path / "bad_images.csv").exists()
