"""`kaggle-style predict` on a new folder of images: sites from folders, bad images, ensembles."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from demo_truth import truth_meta

from kaggle_style.cli import main
from kaggle_style.config import resolve_config
from kaggle_style.constants import SITE_COL
from kaggle_style.data.tables import load_competition_data
from kaggle_style.files import write_json
from kaggle_style.task import CONSERVISION_CLASSES as CLASSES
from kaggle_style.training.config import TrainConfig
from kaggle_style.training.run import run_training

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_run(tiny_data: Path, tiny_folds: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained 3-fold test_resnet run on the tiny data (full frames)."""
    tmp = tmp_path_factory.mktemp("predict_run")
    cfg = resolve_config(
        TrainConfig,
        REPO / "configs" / "tiny-cpu.yaml",
        {
            "name": "tiny",
            "data": str(tiny_data),
            "folds_file": str(tiny_folds),
            "runs_dir": str(tmp / "runs"),
            "cache_dir": str(tmp / "cache"),
            "progress": False,
        },
    )
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


def _run_with_config(run: Path, folder: Path, edit) -> Path:
    """A copy of `run` whose config.yaml text is `edit(text)`."""
    shutil.copytree(run, folder)
    config = folder / "config.yaml"
    config.write_text(edit(config.read_text()))
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
    code = main(
        [
            "predict",
            "--images",
            str(new_deployment),
            "--run",
            str(tiny_run),
            "--site-from-folder",
            "--out",
            str(out),
            "--quiet",
        ]
    )
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
    assert (
        main(
            [
                "predict",
                "--images",
                str(new_deployment),
                "--run",
                str(tiny_run),
                "--site-from-folder",
                "--out",
                str(single),
                "--quiet",
            ]
        )
        == 0
    )
    prior = {c: 1 / len(CLASSES) for c in CLASSES}
    ens = tmp_path / "runs" / "ens"
    write_json(
        ens / "ensemble.json",
        {
            "runs": {"a": str(tiny_run), "b": str(tiny_run)},
            "method": "weighted",
            "space": "logprob",
            "weights": {"a": 0.3, "b": 0.7},
            "temperature": 1.0,
            "site_adapt": {"applied": True, "strength": 3.0, "source_prior": prior},
        },
    )
    out = tmp_path / "ens.csv"
    assert (
        main(
            [
                "predict",
                "--images",
                str(new_deployment),
                "--run",
                str(ens),
                "--site-from-folder",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    base, blended = pd.read_csv(single), pd.read_csv(out)
    assert list(blended["file"]) == list(base["file"])
    expected, _ = adapt_site_priors(
        base[list(CLASSES)].to_numpy(),
        base[SITE_COL].to_numpy(),
        np.array(list(prior.values())),
        3.0,
    )
    np.testing.assert_allclose(blended[list(CLASSES)].to_numpy(), expected, atol=1e-6)
    _check_output(blended, len(base))


def test_crop_trained_run_without_detector_falls_back_with_warning(
    tiny_run: Path, new_deployment: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    crop_run = _run_with_config(
        tiny_run, tmp_path / "crop_run", lambda text: text.replace("view: full", "view: crop")
    )
    out = tmp_path / "crop.csv"
    assert (
        main(
            [
                "predict",
                "--images",
                str(new_deployment),
                "--run",
                str(crop_run),
                "--no-detector",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
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
    code = main(
        [
            "predict",
            "--images",
            str(new_deployment),
            "--run",
            str(mixed),
            "--out",
            str(tmp_path / "p.csv"),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "2 different configs" in err[0] and str(mixed) in err[0]


@pytest.mark.slow
def test_predict_real_conservision_images(
    tiny_run: Path, shared_data: Path, tmp_path: Path
) -> None:
    images = shared_data / "tai_images"
    out = tmp_path / "tai.csv"
    assert (
        main(
            [
                "predict",
                "--images",
                str(images),
                "--run",
                str(tiny_run),
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    frame = pd.read_csv(out)
    n_images = len([p for p in images.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg")])
    _check_output(frame, n_images)
    # a field user gets the info-bar clock too: the meta stage's reader, on the real frames
    when = frame.set_index("file")["datetime"]
    assert when["ZJ000006.jpg"] == "2017-03-19T05:37:45"
    assert when["ZJ000014.jpg"] == "2016-11-13T15:59:55"
    assert {"hour", "night", "sequence"} <= set(frame.columns)
    assert not (tmp_path / "bad_images.csv").exists()


TAI_METADATA = """\
timezone: "+00:00"
contributors: [{title: Jane Doe, role: contact}]
project: {title: Tai camera traps, samplingDesign: systematicRandom,
          captureMethod: [activityDetection]}
deployments:
  default: {latitude: 5.75, longitude: -7.12, coordinateUncertainty: 20000}
"""


def _validate(package: Path, shared_data: Path) -> None:
    import subprocess
    import sys

    folder = shared_data / "camtrap-dp"
    result = subprocess.run(
        [sys.executable, str(folder / "validate_camtrapdp.py"), str(package), str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.heavy
def test_predict_writes_camtrap_dp_and_md_from_real_frames(
    tiny_run: Path, shared_data: Path, tmp_path: Path
) -> None:
    """The Taï frames through predict: a valid package, then MegaDetector results from the
    same work folder (detections and decoded images reused), both with the run's probabilities."""
    from megadetector.postprocessing.validate_batch_results import validate_batch_results

    meta = tmp_path / "metadata.yaml"
    meta.write_text(TAI_METADATA)
    weights = shared_data / "models" / "megadetector_lite" / "yolox_tiny_640_20220528.pth"
    common = [
        "predict",
        "--images",
        str(shared_data / "tai_images"),
        "--run",
        str(tiny_run),
        "--weights",
        str(weights),
        "--work",
        str(tmp_path / "work"),
        "--quiet",
    ]
    package = tmp_path / "package"
    assert (
        main([*common, "--format", "camtrap-dp", "--metadata", str(meta), "--out", str(package)])
        == 0
    )
    _validate(package, shared_data)
    media = pd.read_csv(package / "media.csv")
    assert set(media["deploymentID"]) == {"tai_images"}  # no site folders: the folder's name
    assert "ZJ000006.jpg" in set(media["filePath"])
    md = tmp_path / "md.json"
    assert main([*common, "--format", "md", "--top-k", "2", "--out", str(md)]) == 0
    results = json.loads(md.read_text())
    assert validate_batch_results(results)["validation_results"]["errors"] == []
    assert len(results["images"]) == 9
    pairs = [
        d["classifications"]
        for im in results["images"]
        for d in im["detections"]
        if "classifications" in d
    ]
    assert pairs and all(len(p) == 2 and p[0][1] >= p[1][1] for p in pairs)
    obs = pd.read_csv(package / "observations.csv", keep_default_na=False)
    media_obs = obs[obs["observationLevel"] == "media"].merge(media, on="mediaID")
    top_md = {
        im["file"]: d["classifications"][0][1]
        for im in results["images"]
        for d in im["detections"]
        if "classifications" in d
    }
    for _, row in media_obs[media_obs["filePath"].isin(top_md)].iterrows():
        assert row["classificationProbability"] == pytest.approx(top_md[row["filePath"]], abs=1e-4)


def test_predict_needs_metadata_for_a_package_before_any_work(
    tiny_run: Path, new_deployment: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    code = main(
        [
            "predict",
            "--images",
            str(new_deployment),
            "--run",
            str(tiny_run),
            "--format",
            "camtrap-dp",
            "--out",
            str(tmp_path / "p"),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--metadata FILE" in err[0]
    assert not (tmp_path / "p").exists()


def test_export_writes_the_competition_test_set(
    tiny_run: Path, tiny_data: Path, shared_data: Path, tmp_path: Path
) -> None:
    """A run's test.csv as records, MegaDetector results and a package, with the run's own
    probabilities (calibration is the run's: nothing is rescaled)."""
    from megadetector.postprocessing.validate_batch_results import validate_batch_results

    test, meta = truth_meta(tiny_data)
    meta.to_csv(tmp_path / "meta.csv", index=False)
    (tmp_path / "m.yaml").write_text(TAI_METADATA)
    common = [
        "export",
        "--run",
        str(tiny_run),
        "--data",
        str(tiny_data),
        "--meta",
        str(tmp_path / "meta.csv"),
        "--detections",
        str(tiny_data / "detections.json"),
    ]
    assert (
        main(
            [
                *common,
                "--format",
                "camtrap-dp",
                "--metadata",
                str(tmp_path / "m.yaml"),
                "--out",
                str(tmp_path / "dp"),
            ]
        )
        == 0
    )
    _validate(tmp_path / "dp", shared_data)
    deployments = pd.read_csv(tmp_path / "dp" / "deployments.csv")
    assert sorted(deployments["deploymentID"]) == sorted(test["site"].unique())
    assert main([*common, "--format", "md", "--out", str(tmp_path / "md.json")]) == 0
    md = json.loads((tmp_path / "md.json").read_text())
    assert validate_batch_results(md)["validation_results"]["errors"] == []
    assert (
        main(
            [
                *common,
                "--format",
                "records",
                "--independence-minutes",
                "30",
                "--out",
                str(tmp_path / "rec"),
            ]
        )
        == 0
    )
    counts = pd.read_csv(tmp_path / "rec" / "record_counts.csv")
    predicted = pd.read_csv(tiny_run / "test.csv")
    top = predicted[list(CLASSES)].to_numpy().argmax(axis=1)
    animals = int((np.asarray(CLASSES)[top] != "blank").sum())
    assert counts["untimed_images"].sum() == 0
    events = pd.read_csv(tmp_path / "rec" / "records.csv")
    assert events["images"].sum() == animals  # every animal image in exactly one event
    assert counts["independent_events"].sum() == len(events)
    assert (tmp_path / "rec" / "activity_by_site.png").is_file()
    obs = pd.read_csv(tmp_path / "dp" / "observations.csv", keep_default_na=False)
    media = pd.read_csv(tmp_path / "dp" / "media.csv")
    joined = obs[obs["observationLevel"] == "media"].merge(media, on="mediaID")
    ids = joined["filePath"].str.extract(r"(ZJ\d+)")[0]
    expected = predicted.set_index("id").loc[ids, list(CLASSES)].max(axis=1).to_numpy()
    np.testing.assert_allclose(
        joined["classificationProbability"].astype(float), expected, atol=1e-6
    )


def test_predict_on_the_training_test_images_equals_the_runs_test_file(
    tiny_run: Path, tiny_data: Path, tmp_path: Path
) -> None:
    """predict reads the run's config into TrainConfig and uses training's samples, cache size,
    transform and loader: on the competition's test images it gives the run's own test.csv."""
    out = tmp_path / "same.csv"
    assert (
        main(
            [
                "predict",
                "--images",
                str(tiny_data / "test_features"),
                "--run",
                str(tiny_run),
                "--no-meta",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    predicted = pd.read_csv(out)
    predicted["id"] = predicted["file"].str.replace(".jpg", "", regex=False)
    trained = pd.read_csv(tiny_run / "test.csv").set_index("id")
    np.testing.assert_allclose(
        predicted.set_index("id").loc[trained.index, list(CLASSES)],
        trained[list(CLASSES)],
        atol=1e-6,
    )


def test_a_run_config_with_an_unknown_key_is_one_line(
    tiny_run: Path, new_deployment: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    odd = _run_with_config(tiny_run, tmp_path / "odd", lambda text: text + "mystery_key: 3\n")
    code = main(
        [
            "predict",
            "--images",
            str(new_deployment),
            "--run",
            str(odd),
            "--out",
            str(tmp_path / "p.csv"),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert str(odd / "config.yaml") in err[0] and "mystery_key" in err[0]
