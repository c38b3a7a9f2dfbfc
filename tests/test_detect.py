"""Detection and the crop cache: the MegaDetector file format, crops on a hand-made set whose
right answers are known to the pixel, the backends' errors, and the real offline detector on
real camera-trap images."""

from __future__ import annotations

import importlib.util
import json
import shutil
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from kaggle_style.cli import main
from kaggle_style.constants import SHARED_DATA_ENV
from kaggle_style.data.crop_manifest import crop_paths, load_manifest
from kaggle_style.detect import mdjson
from kaggle_style.detect.batch import (
    DetectConfig,
    build_detector,
    check_writable,
    default_weights,
    detect_images,
)
from kaggle_style.detect.crops import CropConfig, cache_key, crop_region, run_crops
from kaggle_style.detect.errors import DetectorError
from kaggle_style.detect.mdjson import Detection, DetectionFile
from kaggle_style.errors import UserError

THRESHOLDS = [0.05, 0.1, 0.5]
RED = (220, 20, 20)


@pytest.fixture(scope="module")
def shared_data() -> Path:
    folder = Path(__file__).resolve().parents[2] / "shared" / "data"
    if not folder.is_dir():
        pytest.fail(
            f"test data folder missing: {folder} (the shared data must sit beside the "
            "project checkout)"
        )
    return folder


@pytest.fixture(scope="module")
def lite_weights(shared_data: Path) -> Path:
    path = shared_data / "models" / "megadetector_lite" / "yolox_tiny_640_20220528.pth"
    if not path.is_file():
        pytest.fail(f"megadetector-lite weights missing: {path}")
    return path


# ---------------------------------------------------------------------------- file format


def test_mdjson_round_trip(tmp_path: Path) -> None:
    det = DetectionFile(
        images={"a/1.jpg": [Detection("1", 0.91234, (0.1, 0.2, 0.3, 0.4))], "b.jpg": []},
        failures={"c.jpg": "Failure image access"},
        info={"detector": "x"},
    )
    back = mdjson.read(mdjson.write(tmp_path / "d.json", det))
    assert back.images["a/1.jpg"][0].conf == pytest.approx(0.9123)
    assert back.images["a/1.jpg"][0].bbox == (0.1, 0.2, 0.3, 0.4)
    assert back.images["b.jpg"] == []
    assert back.failures == {"c.jpg": "Failure image access"}
    assert back.info["format_version"] == "1.4" and back.info["detector"] == "x"


def test_mdjson_reads_megadetector_output_losslessly(shared_data: Path) -> None:
    path = shared_data / "ena24_small" / "md_annotations.json"
    original = json.loads(path.read_text())
    det = mdjson.read(path)
    assert len(det.images) == 21 and not det.failures
    assert det.categories["1"] == "animal"
    assert det.info["detector"] == "md_v5.0.0"
    first = det.images["2480.jpg"][0]
    assert first.category == "1" and first.conf == pytest.approx(0.926)
    assert first.classifications[0] == ("0", pytest.approx(0.941))
    assert det.to_json() == original  # classifications and extra top-level keys survive


# ---------------------------------------------------------------------- crops (hand-made set)


def _image(path: Path, rects: list[tuple[int, int, int, int, tuple[int, int, int]]]) -> None:
    pixels = np.full((100, 200, 3), 128, np.uint8)
    for left, top, right, bottom, colour in rects:
        pixels[top:bottom, left:right] = colour
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, quality=98)


@pytest.fixture()
def tiny(tmp_path: Path) -> dict[str, Path]:
    """A DrivenData-layout folder of 4 images and a hand-made detections file:
    A0 two animals (0.9 red, 0.3 blue), A1 one weak animal at the corner, A2 only a person,
    A3 a detector failure."""
    data = tmp_path / "data"
    _image(
        data / "train_features" / "A0.jpg",
        [(40, 20, 80, 60, RED), (120, 50, 160, 80, (20, 20, 220))],
    )
    _image(data / "train_features" / "A1.jpg", [(0, 0, 20, 20, RED)])
    _image(data / "test_features" / "A2.jpg", [])
    _image(data / "test_features" / "A3.jpg", [])
    classes = [
        "antelope_duiker",
        "bird",
        "blank",
        "civet_genet",
        "hog",
        "leopard",
        "monkey_prosimian",
        "rodent",
    ]
    pd.DataFrame(
        {
            "id": ["A0", "A1"],
            "filepath": ["train_features/A0.jpg", "train_features/A1.jpg"],
            "site": ["S1", "S2"],
        }
    ).to_csv(data / "train_features.csv", index=False)
    labels = pd.DataFrame(0.0, index=range(2), columns=classes)
    labels["hog"] = 1.0
    labels.insert(0, "id", ["A0", "A1"])
    labels.to_csv(data / "train_labels.csv", index=False)
    pd.DataFrame(
        {
            "id": ["A2", "A3"],
            "filepath": ["test_features/A2.jpg", "test_features/A3.jpg"],
            "site": ["S3", "S3"],
        }
    ).to_csv(data / "test_features.csv", index=False)
    det = DetectionFile(
        images={
            "train_features/A0.jpg": [
                Detection("1", 0.3, (0.6, 0.5, 0.2, 0.3)),
                Detection("1", 0.9, (0.2, 0.2, 0.2, 0.4)),
            ],
            "train_features/A1.jpg": [Detection("1", 0.08, (0.0, 0.0, 0.1, 0.2))],
            "test_features/A2.jpg": [Detection("2", 0.95, (0.1, 0.1, 0.5, 0.5))],
        },
        failures={"test_features/A3.jpg": "Failure image access"},
        info={"detector": "hand-made", "detector_weights_sha256": "abc"},
    )
    detections = mdjson.write(tmp_path / "detections.json", det)
    return {"data": data, "detections": detections, "out": tmp_path / "crops"}


def _cfg(tiny: dict[str, Path], **kw: object) -> CropConfig:
    base = dict(
        detections=tiny["detections"],
        data=tiny["data"],
        thresholds=THRESHOLDS,
        out=tiny["out"],
        num_workers=0,
    )
    return CropConfig(**{**base, **kw})


def test_crop_best_mode_rows_fallbacks_and_pixels(tiny: dict[str, Path]) -> None:
    manifest = load_manifest(run_crops(_cfg(tiny)))
    assert len(manifest) == 4 * len(THRESHOLDS)  # one row per (id, threshold) in best mode
    rows = {(r.id, r.threshold): r for r in manifest.itertuples()}
    # A0: the 0.9 box wins at every threshold, one file shared by all thresholds.
    a0 = [rows[("A0", t)] for t in THRESHOLDS]
    assert {r.crop_path for r in a0} == {a0[0].crop_path} and not any(r.fallback for r in a0)
    assert a0[0].conf == pytest.approx(0.9)
    # Box 40..80 x 20..60 px, padded by 10% of its size (4 px) per side.
    assert (a0[0].x, a0[0].y, a0[0].w, a0[0].h) == pytest.approx((0.18, 0.16, 0.24, 0.48))
    with Image.open(a0[0].crop_path) as crop:
        assert crop.size == (48, 48)
        assert np.abs(np.asarray(crop)[24, 24].astype(int) - RED).max() < 30
    # A1: crop only at 0.05; above its 0.08 it falls back to the full frame.
    assert not rows[("A1", 0.05)].fallback
    for t in (0.1, 0.5):
        row = rows[("A1", t)]
        assert row.fallback and row.crop_path.endswith("train_features/A1.jpg")
        assert (row.x, row.y, row.w, row.h) == (0, 0, 1, 1) and row.conf == pytest.approx(0.08)
    # A2 has only a person, A3 a failure: full frames everywhere.
    for image_id in ("A2", "A3"):
        assert all(rows[(image_id, t)].fallback for t in THRESHOLDS)
    assert all(Path(p).is_file() for p in manifest["crop_path"])
    paths = crop_paths(manifest, 0.1)
    assert set(paths) == {"A0", "A1", "A2", "A3"}
    assert paths["A0"] == [Path(a0[0].crop_path)]
    with pytest.raises(ValueError, match="not in the manifest"):
        crop_paths(manifest, 0.3)


def test_crop_padding_is_clipped_and_small_boxes_grow() -> None:
    # 20x20 px box at the corner of a 200x100 frame: the padding cannot leave the frame...
    assert crop_region((0.0, 0.0, 0.1, 0.2), 0.1, 1, 200, 100) == (0, 0, 22, 22)
    # ...and a minimum size grows it around its centre, shifted back inside the frame.
    assert crop_region((0.0, 0.0, 0.1, 0.2), 0.1, 32, 200, 100) == (0, 0, 32, 32)
    assert crop_region((0.9, 0.9, 0.1, 0.1), 0.5, 1, 200, 100) == (170, 85, 200, 100)


def test_crop_all_mode_keeps_every_box(tiny: dict[str, Path]) -> None:
    manifest = load_manifest(run_crops(_cfg(tiny, mode="all")))
    a0 = manifest[manifest["id"] == "A0"]
    assert a0.groupby("threshold").size().to_dict() == {0.05: 2, 0.1: 2, 0.5: 1}
    low = a0[a0["threshold"] == 0.05]
    assert list(low["conf"]) == pytest.approx([0.9, 0.3])  # best box first
    assert low["crop_path"].nunique() == 2 and not low["fallback"].any()
    assert len(crop_paths(manifest, 0.05)["A0"]) == 2


def test_crop_cache_key_and_reuse(tiny: dict[str, Path]) -> None:
    first = run_crops(_cfg(tiny))
    crops = sorted(first.parent.glob("**/*.jpg"))
    assert len(crops) == 2  # A0's best box and A1's box
    stamps = {p: p.stat().st_mtime_ns for p in crops}
    assert run_crops(_cfg(tiny)) == first  # same key: same folder, nothing rewritten
    assert {p: p.stat().st_mtime_ns for p in crops} == stamps
    crops[0].unlink()  # an interrupted run: the missing crop is made, the other reused
    run_crops(_cfg(tiny))
    assert crops[0].is_file() and crops[1].stat().st_mtime_ns == stamps[crops[1]]
    assert run_crops(_cfg(tiny, pad=0.2)).parent != first.parent
    assert run_crops(_cfg(tiny, mode="all")).parent != first.parent
    det = mdjson.read(tiny["detections"])
    other = DetectionFile(
        det.images, det.failures, det.categories, {**det.info, "detector_weights_sha256": "def"}
    )
    assert cache_key(other, _cfg(tiny)) != cache_key(det, _cfg(tiny))
    # The pointer manifest is the latest run's, with paths that resolve the same.
    latest = load_manifest(run_crops(_cfg(tiny)))
    pointer = load_manifest(tiny["out"] / "manifest.csv")
    pd.testing.assert_frame_equal(
        pointer.drop(columns="crop_path"), latest.drop(columns="crop_path")
    )
    assert list(pointer["crop_path"]) == list(latest["crop_path"])
    assert (first.parent / "crop_config.yaml").is_file()


def test_crop_cli_with_images_folder(tiny: dict[str, Path], tmp_path: Path) -> None:
    """--images: ids are relative paths, and a detections file with those keys lines up."""
    folder = tiny["data"]
    rc = main(
        [
            "crop",
            "--detections",
            str(tiny["detections"]),
            "--images",
            str(folder),
            "--thresholds",
            "0.2",
            "--out",
            str(tmp_path / "c2"),
            "--num-workers",
            "0",
        ]
    )
    assert rc == 0
    manifest = load_manifest(tmp_path / "c2" / "manifest.csv")
    assert set(manifest["id"]) == {
        f"{s}/A{i}.jpg"
        for s, i in [
            ("train_features", 0),
            ("train_features", 1),
            ("test_features", 2),
            ("test_features", 3),
        ]
    }
    assert not manifest.set_index("id").loc["train_features/A0.jpg", "fallback"]


# ---------------------------------------------------------------------------- backends


def test_megadetector_backend_says_what_is_missing(tmp_path: Path) -> None:
    cfg = DetectConfig(images=tmp_path, detector="megadetector", weights=None, device="cpu")
    with pytest.raises(DetectorError, match=r"md_v5a\.0\.0\.pt") as err:
        build_detector(cfg)
    if importlib.util.find_spec("megadetector") is None:
        assert "pip install megadetector" in str(err.value)
    fake = tmp_path / "md_v5a.0.0.pt"
    fake.write_bytes(b"not a model")
    if importlib.util.find_spec("megadetector") is None:
        with pytest.raises(DetectorError, match="pip install megadetector") as err:
            build_detector(DetectConfig(images=tmp_path, detector="megadetector", weights=fake))
        assert "weights file" not in str(err.value)  # the weights were fine


def test_megadetector_lite_missing_weights_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "models" / "yolox_tiny_640_20220528.pth"
    with pytest.raises(DetectorError, match=r"yolox_tiny_640_20220528\.pth") as err:
        build_detector(DetectConfig(images=tmp_path, weights=missing, device="cpu"))
    assert str(missing) in str(err.value)


def test_default_weights_found_in_the_shared_data_folder(
    lite_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./models here
    monkeypatch.setenv(SHARED_DATA_ENV, str(lite_weights.parents[2]))
    found = default_weights("megadetector-lite")
    assert found is not None and found.resolve() == lite_weights.resolve()
    assert default_weights("megadetector") is None
    monkeypatch.delenv(SHARED_DATA_ENV)  # an installed package has no checkout to look beside
    assert default_weights("megadetector-lite") is None


# ------------------------------------------------------------------- the real detector


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """CI and dev boxes share few cores; two spinning OpenMP threads on a busy 2-core machine
    ran the detector 3-15x slower than one."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_megadetector_lite_finds_ena24_animals(
    shared_data: Path, lite_weights: Path, tmp_path: Path, one_torch_thread: None
) -> None:
    """Every ENA24 image holds an animal; zamba's detector must find nearly all of them."""
    start = time.perf_counter()
    cfg = DetectConfig(
        images=shared_data / "ena24_small",
        weights=lite_weights,
        out=tmp_path / "ena.json",
        num_workers=0,
        batch_size=4,
    )
    det = mdjson.read(detect_images(cfg))
    seconds = time.perf_counter() - start
    found = sum(
        any(d.category == "1" and d.conf >= 0.2 for d in dets) for dets in det.images.values()
    )
    print(f"ENA24: {found}/21 images with an animal >= 0.2 in {seconds:.1f} s")
    assert len(det.images) == 21 and not det.failures
    assert found >= 19
    assert det.info["detector_weights_sha256"] and det.info["detection_completion_time"]


@pytest.fixture(scope="module")
def tai_folder(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 9 Taï images plus one corrupt JPEG."""
    folder = tmp_path_factory.mktemp("tai")
    for src in sorted((shared_data / "tai_images").glob("*.jpg")):
        shutil.copy(src, folder / src.name)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return folder


@pytest.fixture(scope="module")
def tai_detections(
    tai_folder: Path,
    lite_weights: Path,
    tmp_path_factory: pytest.TempPathFactory,
    one_torch_thread: None,
) -> Path:
    """One uninterrupted detection run on the Taï images."""
    out = tmp_path_factory.mktemp("tai_det") / "full.json"
    assert (
        main(
            [
                "detect",
                "--images",
                str(tai_folder),
                "--weights",
                str(lite_weights),
                "--out",
                str(out),
                "--num-workers",
                "0",
                "--batch-size",
                "2",
            ]
        )
        == 0
    )
    return out


def test_detect_records_failures_and_reuses_finished_file(
    tai_detections: Path, tai_folder: Path
) -> None:
    det = mdjson.read(tai_detections)
    assert len(det.images) == 9 and list(det.failures) == ["broken.jpg"]
    assert det.info["detector"] == "megadetector-lite"
    assert det.info["detector_weights"] == "yolox_tiny_640_20220528.pth"
    assert len(det.info["detector_weights_sha256"]) == 64
    stamp = tai_detections.stat().st_mtime_ns
    assert main(["detect", "--images", str(tai_folder), "--out", str(tai_detections)]) == 0
    assert tai_detections.stat().st_mtime_ns == stamp  # finished: reused, not recomputed


def test_detect_resume_equals_uninterrupted(
    tai_folder: Path,
    tai_detections: Path,
    lite_weights: Path,
    tmp_path: Path,
    one_torch_thread: None,
) -> None:
    out = tmp_path / "resumed.json"
    args = [
        "detect",
        "--images",
        str(tai_folder),
        "--weights",
        str(lite_weights),
        "--out",
        str(out),
        "--num-workers",
        "0",
        "--batch-size",
        "2",
        "--checkpoint-every",
        "2",
    ]
    assert main([*args, "--limit", "4"]) == 0  # "interrupted" after 4 images
    partial = tmp_path / "resumed.partial.json"
    assert partial.is_file() and not out.exists()
    assert len(mdjson.read(partial).images) + len(mdjson.read(partial).failures) == 4
    assert main(args) == 0
    assert out.is_file() and not partial.exists()
    resumed, full = mdjson.read(out), mdjson.read(tai_detections)
    assert resumed.failures == full.failures
    assert list(resumed.images) == list(full.images)
    for key, dets in full.images.items():
        again = resumed.images[key]
        assert [d.category for d in again] == [d.category for d in dets], key
        assert np.allclose(
            [(d.conf, *d.bbox) for d in again], [(d.conf, *d.bbox) for d in dets], atol=2e-4
        ), key


def test_show_detections_on_tai_images(
    tai_folder: Path, tai_detections: Path, tmp_path: Path
) -> None:
    out = tmp_path / "png"
    assert (
        main(
            [
                "show-detections",
                "--detections",
                str(tai_detections),
                "--images",
                str(tai_folder),
                "--out",
                str(out),
                "--min-conf",
                "0.1",
            ]
        )
        == 0
    )
    pngs = sorted(out.glob("*.png"))
    assert [p.stem for p in pngs] == sorted(p.stem for p in tai_folder.glob("ZJ*.jpg"))
    for png in pngs:
        with Image.open(png) as picture, Image.open(tai_folder / f"{png.stem}.jpg") as src:
            assert picture.format == "PNG" and picture.size == src.size
    # A confident box is drawn: the PNG differs from its source image.
    with Image.open(out / "ZJ000268.png") as drawn, Image.open(tai_folder / "ZJ000268.jpg") as src:
        diff = np.abs(np.asarray(drawn.convert("RGB"), int) - np.asarray(src.convert("RGB"), int))
    assert (diff.max(axis=2) > 100).sum() > 200


# ---------------------------------------------------------------- layering and hostile input


def test_backends_import_without_the_runner() -> None:
    """No cycle: a backend and the errors module load without detect.batch (the runner)."""
    code = (
        "import sys; import kaggle_style.detect.megadetector_lite, "
        "kaggle_style.detect.megadetector; "
        "assert 'kaggle_style.detect.batch' not in sys.modules, sorted(sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert done.returncode == 0, done.stderr
    assert issubclass(DetectorError, UserError)


def test_megadetector_package_batches_and_failures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Our glue to the `megadetector` package (not installed here; no weights offline): a batch
    call when the package has one, boxes converted, the package's own failures kept."""
    from kaggle_style.detect import megadetector

    calls: list[int] = []

    class FakeModel:
        def generate_detections_one_batch(self, images, image_id, detection_threshold):
            calls.append(len(images))
            return [
                {
                    "file": i,
                    "failure": "Failure inference" if n == 1 else None,
                    "detections": [
                        {"category": "1", "conf": 0.3, "bbox": [0, 0, 0.5, 0.5]},
                        {"category": "2", "conf": 0.8, "bbox": [0.1, 0.1, 0.2, 0.2]},
                    ],
                }
                for n, i in enumerate(image_id)
            ]

    class FakePackage:
        @staticmethod
        def load_detector(path: str, force_cpu: bool) -> FakeModel:
            assert Path(path).is_file() and force_cpu
            return FakeModel()

    monkeypatch.setattr(megadetector, "_check_ready", lambda weights: FakePackage)
    images = tmp_path / "images"
    for i in range(3):
        _image(images / f"{i}.jpg", [])
    weights = tmp_path / "md_v5a.0.0.pt"
    weights.write_bytes(b"weights")
    out = detect_images(
        DetectConfig(
            images=images,
            detector="megadetector",
            weights=weights,
            device="cpu",
            out=tmp_path / "md.json",
            num_workers=0,
            batch_size=3,
        )
    )
    det = mdjson.read(out)
    assert calls == [3]  # one batch, not three single-image calls
    assert det.failures == {"1.jpg": "Failure inference"}
    assert [d.conf for d in det.images["0.jpg"]] == [0.8, 0.3]  # best first
    assert det.images["2.jpg"][0].bbox == (0.1, 0.1, 0.2, 0.2)


def test_bombs_become_failures_and_nothing_is_written_into_data(
    tiny: dict[str, Path], lite_weights: Path, tmp_path: Path, one_torch_thread: None
) -> None:
    """A decompression bomb in the data folder: a failure entry in detect, a full-frame fallback
    in crop; and neither stage writes a byte into the data folder (it may be read-only)."""
    data = tiny["data"]

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    header = struct.pack(">IIBBBBB", 15000, 15000, 8, 2, 0, 0, 0)  # a real PNG bomb
    (data / "test_features" / "A3.jpg").write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(64)))
        + chunk(b"IEND", b"")
    )
    before = {p: p.stat().st_mtime_ns for p in data.rglob("*")}
    out = detect_images(
        DetectConfig(
            data=data,
            weights=lite_weights,
            device="cpu",
            out=tmp_path / "det" / "d.json",
            num_workers=0,
            batch_size=2,
        )
    )
    det = mdjson.read(out)
    assert list(det.failures) == ["test_features/A3.jpg"]
    assert "15000x15000" in det.failures["test_features/A3.jpg"]
    manifest = load_manifest(run_crops(_cfg(tiny, detections=out, out=tmp_path / "crops")))
    assert manifest[manifest["id"] == "A3"]["fallback"].all()
    assert {p: p.stat().st_mtime_ns for p in data.rglob("*")} == before


def test_unwritable_detections_folder_is_a_user_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(DetectorError, match="--out PATH"):
        check_writable(blocker / "sub" / "detections.json")


def test_bad_detections_and_manifest_files_are_user_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(UserError, match=r"nope\.json: detections file not found"):
        mdjson.read(missing)
    broken = tmp_path / "broken.json"
    broken.write_text('{"images": [{"nofile": 1}]}')
    with pytest.raises(UserError, match=r"broken\.json: not a MegaDetector batch-output file"):
        mdjson.read(broken)
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("id,threshold\nA,0.1\n")
    with pytest.raises(UserError, match="not a crop manifest"):
        load_manifest(manifest)


def test_stage_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The thin stages raise user errors; the entry point prints them as one line, exit 2."""
    missing = tmp_path / "nope.json"
    assert main(["crop", "--detections", str(missing), "--images", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"kaggle-style crop: error: {missing}: detections file not found; run "
        "`kaggle-style detect` first or pass --detections PATH"
    ]
    assert (
        main(["detect", "--images", str(tmp_path / "none"), "--out", str(tmp_path / "d.json")]) == 2
    )
    assert "kaggle-style detect: error:" in capsys.readouterr().err
    assert (
        main(
            [
                "show-detections",
                "--detections",
                str(missing),
                "--images",
                str(tmp_path),
                "--out",
                str(tmp_path / "png"),
            ]
        )
        == 2
    )
