"""Our field files read back by the tools field projects use: every Camtrap DP package (the Taï
frames, the camtrapR stations, the demo's test set) loaded with the `camtrapdp` package, and the
MegaDetector file through `megadetector`'s own post-processing (the HTML preview and the CSV).
The product imports neither; a broken package or file must fail the same readers."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from demo_truth import truth_meta
from test_outputs import _classified, metadata, tai  # noqa: F401 (fixtures used by name)

from kaggle_style.cli import main
from kaggle_style.outputs.camtrap_dp import write_camtrap_dp
from kaggle_style.outputs.classified import Classified, Thresholds
from kaggle_style.outputs.md_results import write_md_results
from kaggle_style.outputs.metadata import Metadata
from kaggle_style.task import CONSERVISION_CLASSES as CLASSES

TABLES = ("deployments", "media", "observations")
DEMO_METADATA = """\
timezone: "+00:00"
contributors: [{title: Jane Doe, role: contact}]
project: {title: Demo camera traps, samplingDesign: systematicRandom,
          captureMethod: [activityDetection]}
deployments:
  default: {latitude: 5.75, longitude: -7.12, coordinateUncertainty: 20000}
"""


def read_with_camtrapdp(package: Path) -> dict[str, list]:
    """The package's three tables as camtrapdp objects, every coded field through the
    library's own enums (a value outside the standard raises ValueError)."""
    from camtrapdp import Deployment, Media, Observation

    loaded = {
        "deployments": Deployment.from_csv(str(package / "deployments.csv")),
        "media": Media.from_csv(str(package / "media.csv")),
        "observations": Observation.from_csv(str(package / "observations.csv")),
    }
    for item in loaded["media"]:
        Media.CaptureMethod(item.captureMethod)
    for obs in loaded["observations"]:
        Observation.ObservationLevel(obs.observationLevel)
        Observation.ObservationType(obs.observationType)
        Observation.ClassificationMethod(obs.classificationMethod)
    return loaded


def assert_camtrapdp_reads_ours(package: Path) -> None:
    """All three tables load, with our row counts and our probabilities."""
    loaded = read_with_camtrapdp(package)
    for table in TABLES:
        ours = pd.read_csv(package / f"{table}.csv", dtype=str, keep_default_na=False)
        assert len(loaded[table]) == len(ours) > 0, table
    ours = pd.read_csv(package / "observations.csv", dtype=str, keep_default_na=False)
    theirs = [(o.observationID, o.classificationProbability) for o in loaded["observations"]]
    assert theirs == list(
        zip(ours["observationID"], ours["classificationProbability"], strict=True)
    )
    media_ids = {m.mediaID for m in loaded["media"]}
    assert {o.mediaID for o in loaded["observations"] if o.mediaID} <= media_ids


def test_tai_package_loads_in_camtrapdp(
    tai: Classified,  # noqa: F811
    metadata: Metadata,  # noqa: F811
    tmp_path: Path,
) -> None:
    counts = write_camtrap_dp(tai, metadata, Thresholds(), tmp_path / "tai_dp")
    assert_camtrapdp_reads_ours(tmp_path / "tai_dp")
    assert len(read_with_camtrapdp(tmp_path / "tai_dp")["media"]) == counts["media"]


def test_camtrapr_stations_package_loads_in_camtrapdp(
    shared_data: Path,
    metadata: Metadata,  # noqa: F811
    tmp_path: Path,
) -> None:
    classified = _classified(shared_data / "camtrapr", True, None, {}, info_bars=False)
    package = tmp_path / "camtrapr_dp"
    counts = write_camtrap_dp(classified, metadata, Thresholds(top_k=2, min_prob=0.2), package)
    assert_camtrapdp_reads_ours(package)
    loaded = read_with_camtrapdp(package)
    assert [d.deploymentID for d in loaded["deployments"]] == ["StationA", "StationB", "StationC"]
    assert len(loaded["media"]) == counts["media"] == 68


@pytest.fixture(scope="module")
def demo_export(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[list, Path]:
    """A run's test.csv over the demo's test set (random probabilities: the readers only need
    ours to compare with), its meta.csv, and the command that exports it."""
    tmp = tmp_path_factory.mktemp("demo_export")
    test, meta = truth_meta(tiny_data)
    run = tmp / "run"
    run.mkdir()
    probs = np.random.default_rng(0).dirichlet(np.full(len(CLASSES), 0.3), size=len(test))
    predictions = pd.DataFrame(probs, columns=list(CLASSES))
    predictions.insert(0, "id", test["id"])
    predictions.to_csv(run / "test.csv", index=False)
    meta.to_csv(tmp / "meta.csv", index=False)
    (tmp / "metadata.yaml").write_text(DEMO_METADATA)
    command = [
        "export",
        "--run",
        str(run),
        "--data",
        str(tiny_data),
        "--meta",
        str(tmp / "meta.csv"),
    ]
    command += ["--detections", str(tiny_data / "detections.json")]
    return command, tmp


def test_demo_test_set_package_loads_in_camtrapdp(demo_export: tuple[list, Path]) -> None:
    command, tmp = demo_export
    package = tmp / "dp"
    metadata_file = str(tmp / "metadata.yaml")
    assert (
        main(
            [*command, "--format", "camtrap-dp", "--metadata", metadata_file, "--out", str(package)]
        )
        == 0
    )
    assert_camtrapdp_reads_ours(package)
    test_ids = pd.read_csv(tmp / "run" / "test.csv")["id"]
    assert len(read_with_camtrapdp(package)["media"]) == len(test_ids)


def test_a_broken_package_fails_camtrapdp(demo_export: tuple[list, Path]) -> None:
    command, tmp = demo_export
    package = tmp / "broken_dp"
    metadata_file = str(tmp / "metadata.yaml")
    assert (
        main(
            [*command, "--format", "camtrap-dp", "--metadata", metadata_file, "--out", str(package)]
        )
        == 0
    )
    observations = package / "observations.csv"
    text = observations.read_text()
    observations.write_text(text.replace("scientificName", "species", 1))
    with pytest.raises(TypeError, match="species"):
        read_with_camtrapdp(package)
    observations.write_text(text.replace(",animal,", ",dragon,", 1))
    with pytest.raises(ValueError, match="dragon"):
        read_with_camtrapdp(package)


def megadetector_preview(results: Path, images: Path, out: Path, conf: float) -> dict[str, set]:
    """megadetector's HTML preview of `results` (boxes drawn on `images`) and its CSV; the
    images each class page of the preview shows, by class."""
    from megadetector.postprocessing.convert_output_format import convert_json_to_csv
    from megadetector.postprocessing.postprocess_batch_results import (
        PostProcessingOptions,
        process_batch_results,
    )

    options = PostProcessingOptions()
    options.md_results_file = str(results)
    options.output_dir = str(out)
    options.image_base_dir = str(images)
    options.confidence_threshold = conf
    options.classification_confidence_threshold = 0.0
    options.parallelize_rendering = False
    options.verbose = False
    index = Path(process_batch_results(options).output_html_file)
    assert index.is_file()
    convert_json_to_csv(str(results), str(out / "results.csv"))
    shown = {}
    for page in out.glob("class_*.html"):
        files = re.findall(r"<b>image</b>: ([^,<]+),", page.read_text())
        shown[page.stem.removeprefix("class_")] = set(files)
    return shown


def our_top_classes(results: dict, conf: float) -> dict[str, set]:
    """What the preview must show: each image with a box at or above `conf`, under the class
    our classifier gave it the highest probability."""
    names = results["classification_categories"]
    expected: dict[str, set] = {}
    for image in results["images"]:
        kept = [d for d in image["detections"] or [] if d["conf"] >= conf]
        for det in kept:
            top = max(det["classifications"], key=lambda pair: pair[1])[0]
            expected.setdefault(names[top], set()).add(image["file"])
    return expected


def assert_preview_shows_ours(results_file: Path, images: Path, out: Path, conf: float) -> None:
    results = json.loads(results_file.read_text())
    shown = megadetector_preview(results_file, images, out, conf)
    assert shown == our_top_classes(results, conf) and shown
    table = pd.read_csv(out / "results.csv", keep_default_na=False)
    assert list(table["image_path"]) == [image["file"] for image in results["images"]]
    for row, image in zip(table.itertuples(), results["images"], strict=True):
        for det in image["detections"] or []:
            for class_id, prob in det.get("classifications", []):
                column = f"max_classification_conf_{results['classification_categories'][class_id]}"
                assert getattr(row, column) >= prob


def test_tai_md_results_go_through_megadetector_postprocessing(
    tai: Classified,  # noqa: F811
    shared_data: Path,
    tmp_path: Path,
) -> None:
    """Real frames and MegadetectorLite boxes: the preview renders them, each class page shows
    the frames our classifier put there, the CSV keeps our probabilities."""
    thresholds = Thresholds(top_k=len(CLASSES), min_box_conf=0.2)
    write_md_results(tai, thresholds, tmp_path / "md.json")
    frames = shared_data / "tai_images"  # the fixture's copies, less the corrupt one
    assert_preview_shows_ours(tmp_path / "md.json", frames, tmp_path / "preview", 0.2)
    assert any((tmp_path / "preview").glob("detections_animal/*.jpg*"))


def test_demo_md_results_go_through_megadetector_postprocessing(
    demo_export: tuple[list, Path], tiny_data: Path
) -> None:
    command, tmp = demo_export
    results = tmp / "md.json"
    assert (
        main([*command, "--format", "md", "--top-k", str(len(CLASSES)), "--out", str(results)]) == 0
    )
    assert_preview_shows_ours(results, tiny_data, tmp / "preview", 0.1)


def test_a_broken_md_file_fails_megadetector_postprocessing(
    demo_export: tuple[list, Path], tiny_data: Path
) -> None:
    """A file without its boxes stops megadetector itself; classes swapped in the file are
    no longer ours, and the preview shows it."""
    command, tmp = demo_export
    good = tmp / "md_good.json"
    assert main([*command, "--format", "md", "--top-k", "2", "--out", str(good)]) == 0
    results = json.loads(good.read_text())
    for image in results["images"]:
        for det in image["detections"] or []:
            del det["bbox"]
    broken = tmp / "md_no_boxes.json"
    broken.write_text(json.dumps(results))
    with pytest.raises(KeyError, match="bbox"):
        megadetector_preview(broken, tiny_data, tmp / "preview_no_boxes", 0.1)
    results = json.loads(good.read_text())
    names = results["classification_categories"]
    results["classification_categories"] = dict(zip(names, reversed(names.values()), strict=True))
    swapped = tmp / "md_swapped.json"
    swapped.write_text(json.dumps(results))
    shown = megadetector_preview(swapped, tiny_data, tmp / "preview_swapped", 0.1)
    assert shown != our_top_classes(json.loads(good.read_text()), 0.1)


def test_the_product_imports_no_field_reader() -> None:
    """camtrapdp and megadetector's post-processing are the tests' readers, not the product's."""
    code = (
        "import sys, kaggle_style.export, kaggle_style.stages.export, "
        "kaggle_style.outputs.camtrap_dp, kaggle_style.outputs.md_results; "
        "print(sorted(m for m in ('camtrapdp', 'humanfriendly', 'megadetector') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "[]"
