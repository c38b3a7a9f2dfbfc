"""The HTML report on fake runs + a real ensemble of them: every number, image and site shows."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image
from scipy.special import softmax

from kaggle_style.cli import main
from kaggle_style.constants import (
    CLASSES,
    CONFIG_FILE,
    ENSEMBLE_FILE,
    ID_COL,
    METRICS_FILE,
    OOF_FILE,
    TEST_FILE,
)
from kaggle_style.data.tables import load_competition_data
from kaggle_style.ensemble.run import EnsembleConfig, ensemble
from kaggle_style.io import write_csv, write_json
from kaggle_style.metrics import score
from kaggle_style.prediction_files import make_frame, write_predictions
from kaggle_style.report import fmt, untempered

CROP_SIZE = {0.1: (40, 30), 0.2: (20, 20)}  # distinct sizes tell which crop the gallery used


def _fake_run(folder: Path, data: Path, sharpness: float, seed: int) -> None:
    """oof.csv (site-grouped folds), test.csv, metrics.json and a crop-view config.yaml."""
    ds = load_competition_data(data)
    rng = np.random.default_rng(seed)
    y = ds.train["label"].map({c: i for i, c in enumerate(CLASSES)}).to_numpy()
    logits = rng.normal(0, 1, (len(y), len(CLASSES)))
    logits[np.arange(len(y)), y] += 1.0
    oof = softmax(sharpness * logits, axis=1)
    sites = sorted(ds.train["site"].unique())
    folds = ds.train["site"].map({s: i % 3 for i, s in enumerate(sites)}).to_numpy()
    write_predictions(folder / OOF_FILE, make_frame(ds.train[ID_COL], oof, folds))
    test = softmax(rng.normal(0, 1, (len(ds.test), len(CLASSES))), axis=1)
    write_predictions(folder / TEST_FILE, make_frame(ds.test[ID_COL], test))
    write_json(folder / METRICS_FILE, {"overall": score(y, oof), "per_fold": {}})
    (folder / CONFIG_FILE).write_text(yaml.safe_dump({"view": "crop", "crop_threshold": 0.1}))


def _fake_manifest(folder: Path, data: Path) -> Path:
    rows = []
    for image_id in load_competition_data(data).train[ID_COL]:
        for threshold, size in CROP_SIZE.items():
            name = f"{image_id}_{threshold}.jpg"
            Image.new("RGB", size, (200, 50, 50)).save(folder / name)
            rows.append({ID_COL: image_id, "threshold": threshold, "crop_path": name,
                         "x": 0.1, "y": 0.1, "w": 0.5, "h": 0.5, "conf": threshold + 0.5,
                         "fallback": False})
    return write_csv(folder / "manifest.csv", pd.DataFrame(rows))


@pytest.fixture(scope="module")
def report_inputs(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("report")
    run_a, run_b, ens = root / "a", root / "b", root / "ens"
    _fake_run(run_a, tiny_data, sharpness=1.0, seed=1)
    _fake_run(run_b, tiny_data, sharpness=3.0, seed=2)  # over-confident: T > 1 expected
    ensemble(EnsembleConfig(runs=[str(run_a), str(run_b)], data=str(tiny_data), out=str(ens),
                            n_starts=1, site_strengths=[1.0, 10.0], site_adapt="on"))
    crops = root / "crops"
    crops.mkdir()
    return {"a": run_a, "b": run_b, "ens": ens, "manifest": _fake_manifest(crops, tiny_data)}


def test_report_page(report_inputs: dict[str, Path], tiny_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports" / "r1"
    runs = [report_inputs[k] for k in ("a", "b", "ens")]
    argv = ["report", *map(str, runs), "--data", str(tiny_data), "--out", str(out),
            "--crops", str(report_inputs["manifest"]), "--gallery", "5"]
    assert main(argv) == 0
    page = (out / "index.html").read_text()

    # every referenced picture exists beside the page and is a real image
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert sources
    for src in sources:
        assert not Path(src).is_absolute() and "/" not in src
        with Image.open(out / src) as img:
            assert img.size[0] > 0 and img.size[1] > 0
    pngs = [s for s in sources if s.endswith(".png")]
    assert "per_class_accuracy.png" in pngs
    assert {f"confusion_{i}.png" for i in range(3)} <= set(pngs)
    assert {f"reliability_{i}.png" for i in range(3)} <= set(pngs)
    assert "priors_oof_0.png" in pngs

    # the numbers are the JSON files' numbers
    for run in runs:
        overall = json.loads((run / METRICS_FILE).read_text())["overall"]
        for key in ("log_loss", "accuracy", "f1_micro", "f1_macro", "f1_weighted"):
            assert fmt(overall[key]) in page, (run.name, key)
    report = json.loads((report_inputs["ens"] / ENSEMBLE_FILE).read_text())
    assert fmt(report["final"]["nested"]["log_loss"]) in page
    assert fmt(report["final"]["in_sample"]["log_loss"]) in page
    for weight in report["weights"].values():
        assert fmt(weight) in page
    assert report["temperature"] is not None and fmt(report["temperature"]) in page

    # the site table lists every site
    site_section = page.split("<h2>Sites")[1].split("<h2>")[0]
    for site in load_competition_data(tiny_data).train["site"].unique():
        assert f"<td>{site}</td>" in site_section

    # gallery: 5 confidently wrong images, shown as the crops at the runs' threshold 0.1
    thumbs = [s for s in sources if s.startswith("thumb_")]
    assert len(thumbs) == 5
    for thumb in thumbs:
        with Image.open(out / thumb) as img:
            assert img.size == CROP_SIZE[0.1]
    assert page.count("predicted ") >= 5 and "true " in page


def test_gallery_without_crops_shows_full_frames(
    report_inputs: dict[str, Path], tiny_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "r2"
    assert main(["report", str(report_inputs["a"]), "--data", str(tiny_data),
                 "--out", str(out), "--gallery", "2"]) == 0
    page = (out / "index.html").read_text()
    thumbs = re.findall(r'<img src="(thumb_[^"]+)"', page)
    assert len(thumbs) == 2
    with Image.open(out / thumbs[0]) as img:
        assert img.size == (128, 72)  # the demo frames, smaller than a thumbnail
    assert "nested" in page and "Ensemble</h2>" not in page


def test_untempered_undoes_temperature() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (20, len(CLASSES)))
    t = 1.7
    np.testing.assert_allclose(untempered(softmax(logits / t, axis=1), t),
                               softmax(logits, axis=1), rtol=1e-9, atol=1e-12)


def test_missing_metrics_is_an_error(tiny_data: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "nope"), "--data", str(tiny_data),
                 "--out", str(tmp_path / "r")]) == 1
    assert "metrics.json" in capsys.readouterr().err
