"""Camtrap DP packages and MegaDetector results from real frames: the Taï images (info-bar
clocks, MegadetectorLite boxes) and the camtrapR stations (EXIF clocks, stations as sites),
validated by the standard's own profile (frictionless, offline) and MegaDetector's validator."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kaggle_style.cli import main
from kaggle_style.constants import SITE_COL
from kaggle_style.detect import mdjson
from kaggle_style.outputs.camtrap_dp import UNTIMED_FILE, write_camtrap_dp
from kaggle_style.outputs.classified import FILE_COL, Classified, Thresholds
from kaggle_style.outputs.md_results import md_results
from kaggle_style.outputs.metadata import MetadataError, read_metadata
from kaggle_style.outputs.taxonomy import TAXA
from kaggle_style.task import CONSERVISION_CLASSES as CLASSES

METADATA = """\
timezone: "+00:00"
contributors:
  - {title: Jane Doe, email: jane@example.org, role: contact}
project:
  title: Tai camera traps
  samplingDesign: systematicRandom
  captureMethod: [activityDetection]
deployments:
  default: {latitude: 5.75, longitude: -7.12, coordinateUncertainty: 20000}
  StationA: {latitude: 5.751, longitude: -7.121, cameraModel: Cuddeback-G4,
             deploymentStart: 2009-04-01T10:00:00+02:00}
"""


def validate(package: Path, shared_data: Path) -> subprocess.CompletedProcess:
    folder = shared_data / "camtrap-dp"
    return subprocess.run(
        [sys.executable, str(folder / "validate_camtrapdp.py"), str(package), str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def metadata(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("meta") / "metadata.yaml"
    path.write_text(METADATA)
    return read_metadata(path)


def _probs(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.full(len(CLASSES), 0.3), size=n)


def _classified(
    folder: Path,
    site_from_folder: bool,
    detections: Path | None,
    failures: dict[str, str],
    info_bars: bool = True,
) -> Classified:
    """Real clocks (info bar, then EXIF) and sequences; probabilities drawn at random.
    Without `info_bars` only EXIF is read (Tesseract on 68 thumbnails takes minutes here)."""
    from kaggle_style.deployment import image_meta, list_images
    from kaggle_style.meta.sequences import DEFAULT_GAP_SECONDS
    from kaggle_style.outputs.timestamps import fill_from_exif

    table = list_images(folder, site_from_folder)
    table = table[~table[FILE_COL].isin(failures)].set_index(FILE_COL)
    sites = table[SITE_COL].to_numpy() if site_from_folder else None
    if info_bars:
        meta = image_meta(table, sites)
    else:
        unread = pd.DataFrame({"datetime": [""] * len(table), "hour": np.nan, "sequence": ""})
        meta = fill_from_exif(unread, table["path"].tolist(), sites, DEFAULT_GAP_SECONDS)
    images = pd.DataFrame(
        {
            FILE_COL: table.index,
            SITE_COL: sites if sites is not None else folder.name,
            "datetime": meta["datetime"].to_numpy(),
            "sequence": meta["sequence"].to_numpy(),
        }
    )
    images[list(CLASSES)] = _probs(len(images), 0)
    return Classified(
        images,
        "tiny",
        "0123456789abcdef",
        mdjson.read(detections) if detections else None,
        failures,
    )


@pytest.fixture(scope="module")
def tai(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Classified:
    """The 9 Taï frames and a corrupt one, boxes from MegadetectorLite (one torch thread)."""
    import torch

    folder = tmp_path_factory.mktemp("tai") / "tai"
    folder.mkdir()
    for src in sorted((shared_data / "tai_images").glob("*.jpg")):
        shutil.copy(src, folder / src.name)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    weights = shared_data / "models" / "megadetector_lite" / "yolox_tiny_640_20220528.pth"
    out = folder.parent / "detections.json"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert (
            main(
                [
                    "detect",
                    "--images",
                    str(folder),
                    "--weights",
                    str(weights),
                    "--out",
                    str(out),
                    "--num-workers",
                    "0",
                    "--batch-size",
                    "3",
                ]
            )
            == 0
        )
    finally:
        torch.set_num_threads(threads)
    return _classified(folder, False, out, {"broken.jpg": "cannot decode"})


def test_tai_package_validates_with_clocks_boxes_and_events(
    tai: Classified, metadata, shared_data: Path, tmp_path: Path
) -> None:
    package = tmp_path / "tai_dp"
    counts = write_camtrap_dp(tai, metadata, Thresholds(), package)
    result = validate(package, shared_data)
    assert result.returncode == 0, result.stdout + result.stderr
    media = pd.read_csv(package / "media.csv", keep_default_na=False)
    obs = pd.read_csv(package / "observations.csv", keep_default_na=False)
    timed = tai.images[tai.images["datetime"] != ""]
    # the info bar's clock, with the metadata's offset; untimed frames listed, not guessed
    stamp = media.set_index("fileName")["timestamp"]
    assert stamp["ZJ000006.jpg"] == "2017-03-19T05:37:45+00:00"
    assert stamp["ZJ000014.jpg"] == "2016-11-13T15:59:55+00:00"
    assert len(media) == len(timed) == counts["media"]
    untimed = set(tai.images[FILE_COL]) - set(timed[FILE_COL])
    if untimed:
        assert set(pd.read_csv(package / UNTIMED_FILE)[FILE_COL]) == untimed
    # one media-level observation per image (per box for animals), one per event
    level = obs.groupby("observationLevel")
    assert level.get_group("event")["eventID"].nunique() == timed["sequence"].nunique()
    per_media = level.get_group("media")
    assert per_media["mediaID"].nunique() == len(media)
    boxed = per_media[per_media["bboxX"] != ""]
    boxes = sum(
        len(tai.boxes(f, Thresholds()))
        for f in timed[FILE_COL]
        if timed.set_index(FILE_COL).loc[f, list(CLASSES)].idxmax() != "blank"
    )
    assert len(boxed) == boxes and boxes > 0
    # the classifier's probability, unchanged (top class of each image)
    top = timed.set_index(FILE_COL)[list(CLASSES)].max(axis=1)
    by_media = per_media.merge(media[["mediaID", "filePath"]], on="mediaID")
    np.testing.assert_allclose(
        by_media["classificationProbability"].astype(float),
        top.loc[by_media["filePath"]].to_numpy(),
        atol=1e-6,
    )
    assert set(obs["classifiedBy"]) == {"kaggle_style run tiny at git 0123456789ab"}
    deployment = pd.read_csv(package / "deployments.csv").iloc[0]
    assert deployment["deploymentStart"] == min(media["timestamp"])
    assert deployment["deploymentEnd"] == max(media["timestamp"])


def test_a_broken_package_does_not_validate(
    tai: Classified, metadata, shared_data: Path, tmp_path: Path
) -> None:
    package = tmp_path / "broken"
    write_camtrap_dp(tai, metadata, Thresholds(), package)
    obs = pd.read_csv(package / "observations.csv", dtype=str, keep_default_na=False)
    obs.loc[0, "observationType"] = "dragon"
    obs.to_csv(package / "observations.csv", index=False)
    result = validate(package, shared_data)
    assert result.returncode == 1 and "INVALID" in result.stdout, result.stdout


def test_camtrapr_stations_package_validates(shared_data: Path, metadata, tmp_path: Path) -> None:
    classified = _classified(shared_data / "camtrapr", True, None, {}, info_bars=False)
    assert (classified.images["datetime"] != "").all()  # EXIF clocks: every thumbnail timed
    package = tmp_path / "camtrapr_dp"
    counts = write_camtrap_dp(classified, metadata, Thresholds(top_k=2, min_prob=0.2), package)
    result = validate(package, shared_data)
    assert result.returncode == 0, result.stdout + result.stderr
    deployments = pd.read_csv(package / "deployments.csv").set_index("deploymentID")
    assert list(deployments.index) == ["StationA", "StationB", "StationC"]
    assert deployments.loc["StationA", "latitude"] == 5.751  # its own entry, not the default
    assert deployments.loc["StationB", "latitude"] == 5.75
    assert deployments.loc["StationA", "deploymentStart"] == "2009-04-01T10:00:00+02:00"
    assert counts["media"] == 68 and counts["untimed"] == 0
    obs = pd.read_csv(package / "observations.csv", keep_default_na=False)
    kept = obs[obs["observationType"].isin(["animal", "blank"])]
    assert (kept["classificationProbability"].astype(float) >= 0.2).all()
    assert obs[obs["observationLevel"] == "media"].groupby("mediaID").size().max() <= 2
    unknown = obs[obs["observationType"] == "unknown"]
    assert (unknown["classificationProbability"] == "").all()
    package_json = json.loads((package / "datapackage.json").read_text())
    names = {t["scientificName"] for t in package_json["taxonomic"]}
    assert names == set(obs.loc[obs["observationType"] == "animal", "scientificName"])
    assert package_json["temporal"]["start"].startswith("2009-")


def test_md_results_pass_megadetectors_validator(tai: Classified) -> None:
    from megadetector.postprocessing.validate_batch_results import validate_batch_results

    thresholds = Thresholds(top_k=3, min_box_conf=0.2)
    result = md_results(tai, thresholds)
    checked = validate_batch_results(result)["validation_results"]
    assert checked["errors"] == [] and checked["warnings"] == []
    assert result["classification_categories"] == {str(k): c for k, c in enumerate(CLASSES)}
    assert "tiny" in result["info"]["classifier"]
    entries = {e["file"]: e for e in result["images"]}
    assert entries["broken.jpg"]["detections"] is None and entries["broken.jpg"]["failure"]
    probs = tai.images.set_index(FILE_COL)[list(CLASSES)]
    classified_boxes = 0
    for file, entry in entries.items():
        for det in entry["detections"] or []:
            pairs = det.get("classifications", [])
            assert bool(pairs) == (det["conf"] >= 0.2)
            if pairs:
                classified_boxes += 1
                p = [q for _, q in pairs]
                assert len(pairs) == 3 and p == sorted(p, reverse=True)
                expected = np.sort(probs.loc[file].to_numpy())[::-1][:3]
                np.testing.assert_allclose(p, expected, atol=1e-4)
    assert classified_boxes > 0


def test_every_animal_class_has_an_allowed_taxon() -> None:
    allowed = {"kingdom", "phylum", "class", "order", "family", "genus", "species"}
    assert set(TAXA) == set(CLASSES) - {"blank"}
    assert all(t.rank in allowed for t in TAXA.values())
    assert TAXA["leopard"].scientific_name == "Panthera pardus"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda t: t.replace('timezone: "+00:00"\n', ""), "timezone: missing"),
        (lambda t: t.replace('"+00:00"', '"GMT"'), "timezone"),
        (lambda t: t.replace("systematicRandom", "random"), "project.samplingDesign"),
        (lambda t: t.replace("latitude: 5.75,", "latitude: 95,"), "deployments.default.latitude"),
        (lambda t: t.replace("cameraModel", "camera_model"), "camera_model"),
        (lambda t: t.replace('"+00:00"', "+10:00"), "in quotes"),  # YAML: 600
        (
            lambda t: t.replace("2009-04-01T10:00:00+02:00", "2009-04-01T10:00:00"),
            "deployments.StationA.deploymentStart",
        ),
    ],
)
def test_metadata_errors_are_one_line_naming_the_key(tmp_path: Path, edit, expected) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(edit(METADATA))
    with pytest.raises(MetadataError) as err:
        read_metadata(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message and expected in message


def test_a_site_without_coordinates_is_named(tai: Classified, tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        METADATA.replace(
            "  default: {latitude: 5.75, longitude: -7.12, coordinateUncertainty: 20000}\n", ""
        )
    )
    with pytest.raises(MetadataError, match="no coordinates for site"):
        write_camtrap_dp(tai, read_metadata(path), Thresholds(), tmp_path / "p")


def test_the_product_imports_no_validator() -> None:
    """frictionless and megadetector are test tools: writing every format needs neither."""
    code = (
        "import sys, kaggle_style.export, kaggle_style.stages.predict, "
        "kaggle_style.stages.export, kaggle_style.outputs.camtrap_dp, "
        "kaggle_style.outputs.md_results, kaggle_style.outputs.from_run; "
        "print(sorted(m for m in ('frictionless', 'megadetector') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "[]"
