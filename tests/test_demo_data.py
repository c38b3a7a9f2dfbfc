"""The demo generator must write a folder every stage reads as real DrivenData data, pose the
real problem (unseen sites, small animals, night frames, a noisy detector) and repeat itself
byte for byte for a seed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from kaggle_style import cli
from kaggle_style.config import ConfigError
from kaggle_style.constants import (
    CLASSES,
    ID_COL,
    SITE_COL,
    SUBMISSION_FORMAT,
    TEST_FEATURES,
    TRAIN_FEATURES,
    TRAIN_LABELS,
)
from kaggle_style.data import demo
from kaggle_style.data.tables import load_competition_data
from kaggle_style.detect import mdjson

SMALL = {"seed": 0, "n_train": 40, "n_test": 16, "width": 128, "height": 72}


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo.generate_demo_data(tmp_path_factory.mktemp("demo") / "a", **SMALL)


def _files(root: Path) -> dict[str, bytes]:
    """Every output except demo.json, whose run time and output path legitimately differ."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != demo.META_FILE
    }


def _cli(out: Path, *extra: str) -> int:
    args = ["demo-data", "--out", str(out), "--n-train", "40", "--n-test", "16",
            "--set", "width=128", "height=72", *extra]
    return cli.main(args)


def test_folder_loads_with_drivendata_formats(demo_dir: Path) -> None:
    data = load_competition_data(demo_dir)
    assert len(data.train) == 40 and len(data.test) == 16
    header = "id,antelope_duiker,bird,blank,civet_genet,hog,leopard,monkey_prosimian,rodent"
    assert (demo_dir / TRAIN_LABELS).read_text().splitlines()[0] == header
    assert (demo_dir / SUBMISSION_FORMAT).read_text().splitlines()[0] == header
    for name in (TRAIN_FEATURES, TEST_FEATURES):
        assert (demo_dir / name).read_text().splitlines()[0] == "id,filepath,site"
    first = (demo_dir / TRAIN_LABELS).read_text().splitlines()[1].split(",")
    assert sorted(first[1:]) == ["0.0"] * 7 + ["1.0"]  # floats like the real file
    for split, frame in (("train", data.train), ("test", data.test)):
        assert frame[ID_COL].str.fullmatch(r"ZJ\d{6}").all()
        assert (frame["filepath"] == f"{split}_features/" + frame[ID_COL] + ".jpg").all()
        assert frame[SITE_COL].str.fullmatch(r"S\d{4}").all()
        for path in frame["filepath"]:
            assert Image.open(demo_dir / path).size == (128, 72)
    fmt = pd.read_csv(demo_dir / SUBMISSION_FORMAT, dtype={ID_COL: str})
    assert list(fmt[ID_COL]) == list(data.test[ID_COL])
    assert np.allclose(fmt[list(CLASSES)].sum(axis=1), 1.0)
    ids = [int(i[2:]) for i in [*data.train[ID_COL], *data.test[ID_COL]]]
    assert ids == list(range(56))  # test ids follow the train ids, as in the real data


def test_sites_are_many_and_test_sites_unseen(demo_dir: Path) -> None:
    data = load_competition_data(demo_dir)
    train_sites, test_sites = set(data.train[SITE_COL]), set(data.test[SITE_COL])
    assert len(train_sites) == 16 and len(test_sites) == 4
    assert len(train_sites | test_sites) >= 12
    assert not train_sites & test_sites


def test_every_class_present_and_hog_rarest(demo_dir: Path) -> None:
    counts = load_competition_data(demo_dir).train["label"].value_counts()
    assert set(counts.index) == set(CLASSES)
    assert counts["hog"] < counts.drop("hog").min()
    for n in (8, 20, 40, 480, 16488):
        got = demo.class_counts(n)
        assert sum(got.values()) == n and min(got.values()) >= 1
        if n >= 20:
            assert got["hog"] < min(v for c, v in got.items() if c != "hog")


def test_sites_have_their_own_class_mix(demo_dir: Path) -> None:
    priors = json.loads((demo_dir / demo.META_FILE).read_text())["site_class_priors"]
    table = pd.DataFrame(priors).T[list(CLASSES)]
    assert len(table) == 20
    assert np.allclose(table.sum(axis=1), 1.0, atol=1e-3)
    assert (table.max() - table.min()).max() > 0.2  # some class is common here, rare there


def test_same_seed_same_bytes_other_seed_differs(demo_dir: Path, tmp_path: Path) -> None:
    assert _cli(tmp_path / "b") == 0
    same = _files(tmp_path / "b")
    assert same == _files(demo_dir)
    assert _cli(tmp_path / "c", "--seed", "1") == 0
    other = _files(tmp_path / "c")
    assert other.keys() == same.keys()
    assert other[TRAIN_FEATURES] != same[TRAIN_FEATURES]
    assert other["train_features/ZJ000000.jpg"] != same["train_features/ZJ000000.jpg"]


def test_unknown_config_key_fails_before_work(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="n_trian"):
        _cli(tmp_path / "d", "n_trian=3")
    assert not (tmp_path / "d").exists()


def test_night_frames_are_grayscale(demo_dir: Path) -> None:
    truth = pd.read_csv(demo_dir / demo.TRUTH_FILE)
    night = truth[truth["night"]]
    assert 0 < len(night) < len(truth)
    for path in night["filepath"]:
        rgb = np.asarray(Image.open(demo_dir / path).convert("RGB")).astype(int)
        assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
    day = np.asarray(Image.open(demo_dir / truth.loc[~truth["night"], "filepath"].iloc[0]))
    assert (day[..., 0] != day[..., 1]).any()


def test_info_bar_is_dark_strip_with_text(demo_dir: Path) -> None:
    for path in pd.read_csv(demo_dir / TRAIN_FEATURES)["filepath"][:10]:
        gray = np.asarray(Image.open(demo_dir / path).convert("L")).astype(float)
        bar = gray[-9:]
        assert np.median(bar) < 30 and bar.mean() < gray[:-9].mean()
        assert (bar < 50).mean() > 0.6  # mostly the strip's own colour
        assert (bar > 150).any()  # with bright text on it


def test_detections_cover_every_image_with_noisy_boxes(demo_dir: Path) -> None:
    dets = mdjson.read(demo_dir / demo.DETECTIONS_FILE)
    truth = pd.read_csv(demo_dir / demo.TRUTH_FILE)
    assert set(dets.images) == set(truth["filepath"]) and not dets.failures
    assert dets.info["detector"] == "simulated (demo-data generator)"
    assert dets.info["format_version"] == "1.4"
    hits = 0
    for row in truth.itertuples():
        boxes = dets.images[row.filepath]
        for d in boxes:
            x, y, w, h = d.bbox
            assert d.category == "1" and 0 <= d.conf <= 1
            assert 0 <= x <= 1 and 0 <= y <= 1 and x + w <= 1 + 1e-3 and y + h <= 1 + 1e-3
        if row.label == "blank":
            assert all(d.conf <= 0.55 for d in boxes)
        elif any(_iou(d.bbox, (row.bbox_x, row.bbox_y, row.bbox_w, row.bbox_h)) > 0.5
                 for d in boxes):
            hits += 1
    animals = int((truth["label"] != "blank").sum())
    assert 0.6 * animals <= hits <= animals


def test_true_boxes_are_small_and_inside_the_picture(demo_dir: Path) -> None:
    truth = pd.read_csv(demo_dir / demo.TRUTH_FILE)
    animals = truth[truth["label"] != "blank"]
    assert truth.loc[truth["label"] == "blank", "bbox_w"].isna().all()
    assert (animals["bbox_w"] > 0).all() and (animals["bbox_w"] <= 0.21).all()
    assert (animals["bbox_x"] >= 0).all() and (animals["bbox_x"] + animals["bbox_w"] <= 1).all()
    assert (animals["bbox_y"] + animals["bbox_h"] <= 1 - 9 / 72 + 1e-9).all()  # above the bar


def test_render_frame_makes_full_size_frames() -> None:
    train_sites, _ = demo.make_sites(0, 2, 1)
    image, bbox = demo.render_frame(np.random.default_rng(0), train_sites[0], "leopard", 960, 540)
    assert image.size == (960, 540) and image.mode == "RGB"
    assert bbox is not None and 0.04 <= bbox[2] <= 0.21
    blank, none = demo.render_frame(np.random.default_rng(0), train_sites[0], "blank", 480, 270)
    assert none is None and blank.size == (480, 270)
    again, _ = demo.render_frame(np.random.default_rng(0), train_sites[0], "leopard", 960, 540)
    assert again.tobytes() == image.tobytes()


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter + 1e-12)


def test_refuses_to_overwrite_real_data(tmp_path: Path) -> None:
    (tmp_path / TRAIN_FEATURES).write_text("id,filepath,site\n")
    with pytest.raises(ValueError, match="did not make"):
        demo.generate_demo_data(tmp_path, n_train=20, n_test=4, width=64, height=36)
