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
    CONFIG_FILE,
    ENSEMBLE_FILE,
    ID_COL,
    METRICS_FILE,
    OOF_FILE,
    TEST_FILE,
)
from kaggle_style.data.meta_file import META_COLUMNS
from kaggle_style.data.tables import load_competition_data
from kaggle_style.demo.generator import TRUTH_FILE
from kaggle_style.ensemble.run import EnsembleConfig, ensemble
from kaggle_style.files import write_csv, write_json
from kaggle_style.meta.infobar import DAY_HOURS
from kaggle_style.meta.sequences import assign_sequences
from kaggle_style.metrics import score
from kaggle_style.prediction_files import make_frame, write_predictions
from kaggle_style.report.plots import (
    DPI,
    MAX_HEATMAP_SITES,
    priors_plot,
    untempered,
    worst_sites,
)
from kaggle_style.report.runs import fmt
from kaggle_style.report.summary import summarise
from kaggle_style.task import CONSERVISION_CLASSES as CLASSES

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
    write_predictions(folder / OOF_FILE, make_frame(ds.train[ID_COL], oof, folds, classes=CLASSES))
    test = softmax(rng.normal(0, 1, (len(ds.test), len(CLASSES))), axis=1)
    write_predictions(folder / TEST_FILE, make_frame(ds.test[ID_COL], test, classes=CLASSES))
    write_json(folder / METRICS_FILE, {"overall": score(y, oof, CLASSES), "per_fold": {}})
    (folder / CONFIG_FILE).write_text(yaml.safe_dump({"view": "crop", "crop_threshold": 0.1}))


def _true_meta(data: Path, out: Path) -> Path:
    """meta.csv as a perfect reader would write it: the generator's own clocks (truth.csv)."""
    truth = pd.read_csv(data / TRUTH_FILE, dtype={"datetime": str})
    stamps = pd.to_datetime(truth["datetime"])
    meta = pd.DataFrame(
        {
            ID_COL: truth[ID_COL],
            "datetime": truth["datetime"],
            "hour": stamps.dt.hour + stamps.dt.minute / 60 + stamps.dt.second / 3600,
            "camera": truth["camera"],
            "night": truth["night"].astype(int),
            "confidence": 1.0,
            "sequence": assign_sequences(truth["site"], truth["datetime"], 60),
        }
    )
    return write_csv(out, meta[list(META_COLUMNS)])


def _fake_manifest(folder: Path, data: Path) -> Path:
    rows = []
    for image_id in load_competition_data(data).train[ID_COL]:
        for threshold, size in CROP_SIZE.items():
            name = f"{image_id}_{threshold}.jpg"
            Image.new("RGB", size, (200, 50, 50)).save(folder / name)
            rows.append(
                {
                    ID_COL: image_id,
                    "threshold": threshold,
                    "crop_path": name,
                    "x": 0.1,
                    "y": 0.1,
                    "w": 0.5,
                    "h": 0.5,
                    "conf": threshold + 0.5,
                    "fallback": False,
                }
            )
    return write_csv(folder / "manifest.csv", pd.DataFrame(rows))


@pytest.fixture(scope="module")
def report_inputs(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("report")
    run_a, run_b, ens = root / "a", root / "b", root / "ens"
    _fake_run(run_a, tiny_data, sharpness=1.0, seed=1)
    _fake_run(run_b, tiny_data, sharpness=3.0, seed=2)  # over-confident: T > 1 expected
    meta = _true_meta(tiny_data, root / "meta.csv")
    ensemble(
        EnsembleConfig(
            runs=[str(run_a), str(run_b)],
            data=str(tiny_data),
            out=str(ens),
            n_starts=1,
            site_strengths=[1.0, 10.0],
            site_adapt="on",
            meta=str(meta),
            sequences="on",
            time_adjust="on",
        )
    )
    crops = root / "crops"
    crops.mkdir()
    return {
        "a": run_a,
        "b": run_b,
        "ens": ens,
        "manifest": _fake_manifest(crops, tiny_data),
        "meta": meta,
    }


def test_report_page(report_inputs: dict[str, Path], tiny_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports" / "r1"
    runs = [report_inputs[k] for k in ("a", "b", "ens")]
    argv = [
        "report",
        *map(str, runs),
        "--data",
        str(tiny_data),
        "--out",
        str(out),
        "--crops",
        str(report_inputs["manifest"]),
        "--gallery",
        "5",
    ]
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
    assert (
        main(
            [
                "report",
                str(report_inputs["a"]),
                "--data",
                str(tiny_data),
                "--out",
                str(out),
                "--gallery",
                "2",
            ]
        )
        == 0
    )
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
    np.testing.assert_allclose(
        untempered(softmax(logits / t, axis=1), t), softmax(logits, axis=1), rtol=1e-9, atol=1e-12
    )


def test_missing_metrics_is_an_error(
    tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "report",
                str(tmp_path / "nope"),
                "--data",
                str(tiny_data),
                "--out",
                str(tmp_path / "r"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "kaggle-style report: error:" in err and "metrics.json" in err


def test_clock_sections(report_inputs: dict[str, Path], tiny_data: Path, tmp_path: Path) -> None:
    """Activity by hour (observed night shares are the truth's), sequences per site (the
    counts of meta.csv), and the time step's effect from ensemble.json."""
    out = tmp_path / "r3"
    assert (
        main(
            [
                "report",
                str(report_inputs["a"]),
                str(report_inputs["ens"]),
                "--data",
                str(tiny_data),
                "--out",
                str(out),
                "--meta",
                str(report_inputs["meta"]),
                "--gallery",
                "1",
            ]
        )
        == 0
    )
    page = (out / "index.html").read_text()
    assert '<img src="activity_by_hour.png"' in page and '<img src="time_effect_0.png"' in page
    for png in ("activity_by_hour.png", "time_effect_0.png"):
        with Image.open(out / png) as img:
            assert img.size[0] > 200 and img.size[1] > 100

    meta = pd.read_csv(report_inputs["meta"], dtype={"sequence": str})
    truth = pd.read_csv(tiny_data / TRUTH_FILE).merge(meta, on=ID_COL)
    train = truth[truth["split"] == "train"]
    night = (train["hour"] < DAY_HOURS[0]) | (train["hour"] >= DAY_HOURS[1])
    activity = page.split("<h2>Activity by hour")[1].split("<h2>")[0]
    for name in CLASSES:
        share = night[train["label"] == name].mean()
        row = re.search(rf"<tr><td>{name}</td><td>([^<]+)</td>", activity)
        assert row is not None and row.group(1) == fmt(share, 3), name

    sequences = page.split("<h2>Sequences per site")[1].split("<h2>")[0]
    for site, rows in truth.groupby("site"):
        split = rows["split"].iloc[0]
        cells = (
            f"<td>{site}</td><td>{split}</td><td>{len(rows)}</td><td>{len(rows)}</td>"
            f"<td>{rows['sequence'].nunique()}</td>"
        )
        assert cells in sequences, site

    # the test set's record table: one row per test site with an animal event, its activity
    records = page.split("<h2>Independent events per site (test)")[1].split("<h2>")[0]
    assert '<img src="activity_by_site.png"' in records
    test = truth[truth["split"] == "test"]
    shown = set(re.findall(r"<tr><td>([^<]+)</td>", records))
    assert shown <= set(test["site"]) and shown

    report = json.loads((report_inputs["ens"] / ENSEMBLE_FILE).read_text())
    time_step = report["time"]
    assert "coef" in time_step
    assert fmt(time_step["nested"]["after"]) in page.split("Time of day in the ensemble")[1]
    steps = page.split("second-stage steps")[1]
    assert "sequence pooling" in steps and fmt(report["sequences"]["nested"]["after"]) in steps


def test_report_without_meta_says_how_to_get_it(
    report_inputs: dict[str, Path], tiny_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "r4"
    assert (
        main(
            [
                "report",
                str(report_inputs["a"]),
                "--data",
                str(tiny_data),
                "--out",
                str(out),
                "--gallery",
                "0",
            ]
        )
        == 0
    )
    page = (out / "index.html").read_text()
    assert "kaggle-style meta" in page and "activity_by_hour.png" not in page


def test_site_heat_map_stays_bounded_with_many_sites(tmp_path: Path) -> None:
    """1,480 sites once made a 31,000-pixel PNG; the heat map now shows the worst sites only."""
    rng = np.random.default_rng(0)
    priors = {}
    for k in range(1480):
        true = rng.dirichlet(np.ones(len(CLASSES)))
        after = rng.dirichlet(np.ones(len(CLASSES)))
        priors[f"S{k:04d}"] = {
            "n": int(rng.integers(1, 50)),
            "before": dict(zip(CLASSES, after, strict=True)),
            "after": dict(zip(CLASSES, after, strict=True)),
            "true": dict(zip(CLASSES, true, strict=True)),
        }
    priors["S9999"] = {
        "n": 3,
        "before": {c: float(c == "hog") for c in CLASSES},
        "after": {c: float(c == "hog") for c in CLASSES},
        "true": {c: float(c == "bird") for c in CLASSES},
    }  # the worst: L1 = 2
    png, shown = priors_plot(priors, ("before", "after", "true"), "many.png", tmp_path)
    assert shown == MAX_HEATMAP_SITES
    with Image.open(tmp_path / png) as img:
        assert img.size[1] <= (1 + 0.3 * MAX_HEATMAP_SITES) * DPI + 200
    assert worst_sites(priors)[0] == "S9999"  # the farthest from its truth comes first


def test_summary_prints_each_second_stage_step(
    report_inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    submission = tmp_path / "sub.csv"
    assert main(["summary", str(report_inputs["ens"]), str(submission)]) == 0
    text = capsys.readouterr().out
    report = json.loads((report_inputs["ens"] / ENSEMBLE_FILE).read_text())
    assert fmt(report["final"]["nested"]["log_loss"]) in text
    for key, label in (
        ("sequences", "sequence pooling"),
        ("time", "time of day"),
        ("site_adapt", "site adaptation"),
    ):
        line = next(t for t in text.splitlines() if t.strip().startswith(label))
        assert fmt(report[key]["nested"]["before"]) in line, key
        assert fmt(report[key]["nested"]["after"]) in line, key
        assert ("not applied" not in line) == report[key]["applied"], key
    assert summarise(report_inputs["ens"], submission) in text


def test_report_refuses_a_run_whose_folds_mix_configs(
    report_inputs: dict[str, Path],
    tiny_data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import shutil

    mixed = tmp_path / "mixed"
    shutil.copytree(report_inputs["a"], mixed)
    for fold, key in ((0, "aaaa"), (1, "bbbb")):
        (mixed / f"fold{fold}").mkdir()
        write_json(mixed / f"fold{fold}" / "done.json", {"model_hash": key})
        (mixed / f"fold{fold}" / OOF_FILE).write_text("id\n")
    assert main(["report", str(mixed), "--data", str(tiny_data), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "2 different configs" in err[0], err
