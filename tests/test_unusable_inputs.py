"""Inputs that are all unusable: every image unreadable, every clock unread, every box below the
thresholds, every row filtered out. Each stage says so in one line (exit 2) and writes nothing,
or, where an empty result means something, writes a valid file and says it is empty."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from kaggle_style.cli import main
from kaggle_style.config import resolve_config
from kaggle_style.constants import FILEPATH_COL, FOLD_COL, ID_COL
from kaggle_style.detect import mdjson
from kaggle_style.meta.sequences import assign_sequences
from kaggle_style.task import TRAIN_FEATURES
from kaggle_style.training.config import TrainConfig
from kaggle_style.training.run import run_training

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "tiny-cpu.yaml"


def _one_line(capsys: pytest.CaptureFixture[str], *words: str) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def _files(folder: Path) -> set[Path]:
    """Every file and folder below `folder`, hidden ones included."""
    return set(folder.rglob("*"))


@pytest.fixture(scope="module")
def tiny_run(tiny_data: Path, tiny_folds: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained 3-fold test_resnet run on the tiny data."""
    tmp = tmp_path_factory.mktemp("unusable_run")
    cfg = resolve_config(
        TrainConfig,
        TINY,
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


@pytest.fixture
def zero_byte_images(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        (folder / name).write_bytes(b"")
    return folder


def _zeroed_copy(data: Path, folder: Path, which: str = "*") -> Path:
    """A copy of a data folder whose images matching `which` are zero-byte files."""
    shutil.copytree(data, folder)
    for image in folder.glob(f"{which}/*.jpg"):
        image.write_bytes(b"")
    return folder


@pytest.mark.parametrize("meta", [[], ["--no-meta"]], ids=["clocks", "no-meta"])
def test_predict_on_a_folder_of_zero_byte_images_is_one_line_and_writes_nothing(
    tiny_run: Path,
    zero_byte_images: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    meta: list[str],
) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    argv = ["predict", "--images", str(zero_byte_images), "--run", str(tiny_run)]
    code = main([*argv, "--out", str(out_dir / "p.csv"), "--no-detector", "--quiet", *meta])
    assert code == 2
    _one_line(capsys, str(zero_byte_images), "none of its 3 image(s) can be read")
    assert _files(out_dir) == set()  # no empty p.csv, no bad_images.csv, no work folder


def test_assign_sequences_of_no_images_is_empty() -> None:
    assert len(assign_sequences([], [])) == 0


def test_meta_on_unreadable_frames_is_one_line_and_writes_nothing(
    tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _zeroed_copy(tiny_data, tmp_path / "data")
    out = tmp_path / "out" / "meta.csv"
    assert main(["meta", "--data", str(data), "--out", str(out), "--quiet"]) == 2
    _one_line(capsys, "none of the", "frames can be read")
    assert not out.parent.exists()


def test_meta_with_no_clock_read_writes_the_file_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Frames without an info bar: a valid meta.csv of empty times is still the truth."""
    data = tmp_path / "data"
    (data / "train_features").mkdir(parents=True)
    rows = []
    for k in range(3):
        Image.new("RGB", (96, 64), (40 * k, 90, 120)).save(data / f"train_features/{k}.jpg")
        rows.append((f"Z{k}", f"train_features/{k}.jpg", "S1"))
    pd.DataFrame(rows, columns=[ID_COL, FILEPATH_COL, "site"]).to_csv(
        data / TRAIN_FEATURES, index=False
    )
    out = tmp_path / "meta.csv"
    assert main(["meta", "--data", str(data), "--out", str(out), "--quiet"]) == 0
    assert "no clock read in any of the 3 frames" in capsys.readouterr().err
    assert (pd.read_csv(out, keep_default_na=False)["datetime"] == "").all()


def test_detect_on_unreadable_images_is_one_line_and_writes_nothing(
    zero_byte_images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "det" / "detections.json"
    argv = ["detect", "--images", str(zero_byte_images), "--out", str(out), "--num-workers", "0"]
    assert main(argv) == 2
    _one_line(capsys, "none of the 3 images can be read", str(out))
    assert not out.exists() and list(out.parent.iterdir()) == []  # no partial file either


def _detections(path: Path, files: list[str], conf: float) -> Path:
    boxes = {f: [mdjson.Detection("1", conf, (0.2, 0.2, 0.4, 0.4))] for f in files}
    return mdjson.write(path, mdjson.DetectionFile(images=boxes, categories={"1": "animal"}))


def test_crop_on_unreadable_images_is_one_line_and_writes_nothing(
    zero_byte_images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    detections = _detections(tmp_path / "d.json", ["a.jpg", "b.jpg", "c.jpg"], 0.9)
    out = tmp_path / "crops"
    argv = ["crop", "--images", str(zero_byte_images), "--detections", str(detections)]
    assert main([*argv, "--out", str(out), "--num-workers", "1"]) == 2
    _one_line(capsys, "none of the 3 images can be read")
    assert not out.exists()


def test_crop_with_every_box_below_the_thresholds_writes_full_frames_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a.jpg", "b.jpg"):
        Image.new("RGB", (96, 64), (10, 90, 120)).save(images / name)
    detections = _detections(tmp_path / "d.json", ["a.jpg", "b.jpg"], 0.01)
    out = tmp_path / "crops"
    argv = ["crop", "--images", str(images), "--detections", str(detections), "--out", str(out)]
    assert main([*argv, "--thresholds", "0.5", "--num-workers", "1"]) == 0
    assert "no box reaches any threshold (0.5)" in capsys.readouterr().err
    manifest = pd.read_csv(out / "manifest.csv")
    assert len(manifest) == 2 and manifest["fallback"].all()


def _train_argv(data: Path, folds: Path, tmp_path: Path, *sets: str) -> list[str]:
    return [
        "train",
        "--config",
        str(TINY),
        "--data",
        str(data),
        "--folds-file",
        str(folds),
        "--runs-dir",
        str(tmp_path / "runs"),
        "--quiet",
        "--set",
        f"cache_dir={tmp_path / 'cache'}",
        *sets,
    ]


def test_train_on_unreadable_training_images_is_one_line_and_writes_no_run(
    tiny_data: Path, tiny_folds: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _zeroed_copy(tiny_data, tmp_path / "data", "train_features")
    with pytest.warns(UserWarning):
        assert main(_train_argv(data, tiny_folds, tmp_path)) == 2
    _one_line(capsys, "none of the", "training images can be read")
    assert not (tmp_path / "runs").exists()


def test_train_with_a_fold_of_unreadable_images_is_one_line_and_writes_no_run(
    tiny_data: Path, tiny_folds: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    features = pd.read_csv(data / TRAIN_FEATURES, dtype=str)
    folds = pd.read_csv(tiny_folds, dtype={ID_COL: str})
    fold0 = set(folds.loc[folds[FOLD_COL] == 0, ID_COL])
    for filepath in features.loc[features[ID_COL].isin(fold0), FILEPATH_COL]:
        (data / filepath).write_bytes(b"")
    with pytest.warns(UserWarning):
        assert main(_train_argv(data, tiny_folds, tmp_path)) == 2
    _one_line(capsys, "fold 0 has no readable validation image")
    assert not (tmp_path / "runs").exists()


def test_pseudo_labels_that_keep_no_test_image_are_refused_before_any_work(
    tiny_run: Path,
    tiny_data: Path,
    tiny_folds: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    runs = tiny_run.parent
    second = f"pseudo_labels={{from: {tiny_run.name}, min_prob: 0.999}}"
    argv = _train_argv(tiny_data, tiny_folds, tmp_path, "name=second", second)
    argv[argv.index("--runs-dir") + 1] = str(runs)
    assert main(argv) == 2
    _one_line(capsys, "pseudo_labels.min_prob: 0.999 keeps none of the", "test images in fold")
    assert not (runs / "second").exists()


def test_lb_check_with_a_share_that_empties_one_side_is_one_line_and_writes_nothing(
    tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "work"
    for share, side in (("0", "no test image"), ("1", "no training image")):
        argv = ["lb-check", "--config", str(TINY), "--data", str(tiny_data), "--work", str(work)]
        assert main([*argv, "--share", share]) == 2
        _one_line(capsys, f"--share {share} holds out", side)
        assert not work.exists()


def test_lb_check_never_removes_runs_it_did_not_make(
    tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--work .` beside the user's runs/ must not clear them before its own run."""
    mine = tmp_path / "runs" / "my-model" / "oof.csv"
    mine.parent.mkdir(parents=True)
    mine.write_text("id\n")
    argv = ["lb-check", "--config", str(TINY), "--data", str(tiny_data), "--work", str(tmp_path)]
    assert main(argv) == 2
    _one_line(capsys, "my-model", "give a folder of its own as --work")
    assert mine.exists()


def test_export_with_every_class_below_min_prob_writes_valid_empty_records_and_says_so(
    tiny_run: Path, tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "records"
    argv = ["export", "--run", str(tiny_run), "--data", str(tiny_data), "--out", str(out)]
    assert main([*argv, "--format", "records", "--min-prob", "0.999"]) == 0
    assert "empty: no image has a class at --min-prob 0.999 or above" in capsys.readouterr().err
    records = pd.read_csv(out / "records.csv")
    assert len(records) == 0 and "class" in records.columns


def test_show_detections_leaves_an_unreadable_image_out_and_draws_the_rest(
    zero_byte_images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Image.new("RGB", (96, 64), (10, 90, 120)).save(zero_byte_images / "good.jpg")
    detections = _detections(tmp_path / "d.json", ["a.jpg", "good.jpg"], 0.9)
    out = tmp_path / "shown"
    argv = ["show-detections", "--detections", str(detections), "--images", str(zero_byte_images)]
    assert main([*argv, "--out", str(out)]) == 0
    assert "1 unreadable image(s) left out" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["good.png"]


def test_show_detections_with_nothing_drawable_is_one_line_and_keeps_the_old_folder(
    zero_byte_images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "shown"
    out.mkdir()
    (out / "earlier.png").write_bytes(b"png")
    detections = _detections(tmp_path / "d.json", ["a.jpg", "b.jpg"], 0.9)
    argv = ["show-detections", "--detections", str(detections), "--images", str(zero_byte_images)]
    assert main([*argv, "--out", str(out)]) == 2
    _one_line(capsys, "could be drawn", "nothing written")
    assert [p.name for p in out.iterdir()] == ["earlier.png"]


def test_export_writes_nothing_inside_the_data_folder(
    tiny_run: Path, tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    before = _files(data)
    argv = ["export", "--run", str(tiny_run), "--data", str(data), "--format", "records"]
    assert main([*argv, "--out", str(data / "records")]) == 2
    _one_line(capsys, "overlaps the input --data", "write the output elsewhere")
    assert _files(data) == before
