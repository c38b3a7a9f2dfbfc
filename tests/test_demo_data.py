"""The demo generator must write a folder every stage reads as real DrivenData data, pose the
real problem (unseen sites, small animals, night frames, a noisy detector, camera clocks, bursts,
species' activity hours), repeat itself byte for byte for a seed, and, with clocks and bursts
switched off, write exactly what the generator wrote before them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from kaggle_style import cli
from kaggle_style.config import ConfigError
from kaggle_style.constants import ID_COL, SITE_COL
from kaggle_style.data.tables import load_competition_data
from kaggle_style.demo import generator as demo
from kaggle_style.demo import visits
from kaggle_style.demo.frames import Shot, bar_height, render_frame
from kaggle_style.demo.infobar import LOGO_SHARE, NO_BAR
from kaggle_style.demo.plan import class_counts, make_sites
from kaggle_style.detect import mdjson
from kaggle_style.meta import infobar
from kaggle_style.task import CONSERVISION_CLASSES as CLASSES
from kaggle_style.task import SUBMISSION_FORMAT, TEST_FEATURES, TRAIN_FEATURES, TRAIN_LABELS

SMALL = {"seed": 0, "n_train": 40, "n_test": 16, "width": 128, "height": 72}
OFF = {"timestamps": False, "bursts": False}
# What the generator wrote for SMALL before clocks and bursts existed. The tables are compared
# byte for byte (they come from numpy's seeded generator alone). The frames are compared decoded,
# as 4x4-pixel block means (tests/data/demo_off_frames.npz, rounded to whole grey levels): JPEG
# encoders and image rendering differ across processors by a level or two per pixel, so bytes
# would fail on another CPU, while a moved animal or a changed pixel is far outside the tolerance.
OLD_TABLES = {
    "detections.json": "c44551f38888f532933648b67acb51e1d4513262b3d0e5e401c12895300c765e",
    "submission_format.csv": "ca4f97d23729ae2f5da2c908741e2686921ffdc5a631f90bd98a250652328313",
    "test_features.csv": "d5e835d68e30ad291fb5ea0d2fe8971a244da42481c1f24ac9706f1223b1fa86",
    "train_features.csv": "ba4546d6043671258df300f890426f4d9641c38dd15302904166d1da43ecf149",
    "train_labels.csv": "f1c9ff62b5a265aa4534c3a26480bea609083dd38cfd63ac1598f62e40bc68ab",
    "truth.csv": "4d56b1a58872a4acd1e2dbab4e00813f193e56bf051f3fcad122e2ac9e407f5a",
}
OLD_FRAMES = Path(__file__).parent / "data" / "demo_off_frames.npz"
BLOCK = 4
# A whole extra JPEG generation at quality 90 moves a block mean by at most 5.25 levels (mean
# 0.36); another CPU's encoder differs far less, while a 3x3 white patch is far outside.
FRAME_MAX_LEVELS = 6.0
FRAME_MEAN_LEVELS = 0.5


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo.generate_demo_data(tmp_path_factory.mktemp("demo") / "a", **SMALL)


@pytest.fixture(scope="module")
def clock_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real-size bar at the demo's own size: 320x180, where the clocks are legible."""
    return demo.generate_demo_data(
        tmp_path_factory.mktemp("clock") / "c",
        seed=2,
        n_train=120,
        n_test=30,
        width=320,
        height=180,
    )


def _files(root: Path) -> dict[str, bytes]:
    """Every output except demo.json, whose run time and output path legitimately differ."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != demo.INFO_FILE
    }


def _cli(out: Path, *extra: str) -> int:
    args = [
        "demo-data",
        "--out",
        str(out),
        "--n-train",
        "40",
        "--n-test",
        "16",
        "--set",
        "width=128",
        "height=72",
        *extra,
    ]
    return cli.main(args)


def _block_means(frame: np.ndarray) -> np.ndarray:
    h, w, c = frame.shape
    return frame.reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK, c).mean(axis=(1, 3))


def _frame_gap(frames: dict[str, np.ndarray]) -> tuple[float, float]:
    """Largest and mean difference (grey levels) between these frames' block means and the old."""
    old = np.load(OLD_FRAMES)
    assert sorted(frames) == list(old["names"])
    new = np.stack([_block_means(frames[name]) for name in old["names"]])
    gap = np.abs(new - old["blocks"].astype(np.float64))
    return float(gap.max()), float(gap.mean())


def test_switched_off_generator_writes_the_old_data(tmp_path: Path) -> None:
    out = demo.generate_demo_data(tmp_path / "old", **SMALL, **OFF)
    files = _files(out)
    for name, digest in OLD_TABLES.items():
        assert hashlib.sha256(files[name]).hexdigest() == digest, name
    assert set(files) == {
        *OLD_TABLES,
        *(
            f"{s}_features/ZJ{i:06d}.jpg"
            for s, i in [*(("train", i) for i in range(40)), *(("test", i) for i in range(40, 56))]
        ),
    }
    frames = {
        name: np.asarray(Image.open(out / name).convert("RGB"), dtype=np.float64)
        for name in files
        if name.endswith(".jpg")
    }
    worst, mean = _frame_gap(frames)
    assert worst <= FRAME_MAX_LEVELS and mean <= FRAME_MEAN_LEVELS, (
        f"the frames differ from the old generator's: block means off by up to {worst:.2f} "
        f"grey levels (mean {mean:.3f})"
    )
    name = sorted(frames)[0]  # the tolerance is tight enough to see one small change
    touched = frames[name].copy()
    touched[30:33, 60:63] = 255.0
    assert _frame_gap({**frames, name: touched})[0] > FRAME_MAX_LEVELS


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
    fmt = pd.read_csv(demo_dir / SUBMISSION_FORMAT)
    assert list(fmt[ID_COL]) == list(data.test[ID_COL])
    assert np.allclose(fmt[list(CLASSES)].sum(axis=1), 1.0)
    ids = [int(i[2:]) for i in [*data.train[ID_COL], *data.test[ID_COL]]]
    assert ids == list(range(56))  # test ids follow the train ids, as in the real data


def test_sites_are_many_and_test_sites_unseen(demo_dir: Path) -> None:
    data = load_competition_data(demo_dir)
    train_sites, test_sites = set(data.train[SITE_COL]), set(data.test[SITE_COL])
    assert len(train_sites) == 16 and len(test_sites) == 4
    assert not train_sites & test_sites


def test_every_class_present_and_hog_rarest(demo_dir: Path) -> None:
    counts = load_competition_data(demo_dir).train["label"].value_counts()
    assert set(counts.index) == set(CLASSES)
    assert counts["hog"] < counts.drop("hog").min()
    for n in (8, 20, 40, 480, 16488):
        got = class_counts(n)
        assert sum(got.values()) == n and min(got.values()) >= 1
        if n >= 20:
            assert got["hog"] < min(v for c, v in got.items() if c != "hog")


def test_sites_have_their_own_class_mix(demo_dir: Path) -> None:
    priors = json.loads((demo_dir / demo.INFO_FILE).read_text())["site_class_priors"]
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


def test_bad_config_fails_before_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(tmp_path / "d", "n_trian=3") == 2
    assert "unknown key(s) n_trian" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="max_burst"):
        demo.DemoDataConfig(out=str(tmp_path / "e"), max_burst=6)
    with pytest.raises(ConfigError, match="too small"):
        demo.DemoDataConfig(out=str(tmp_path / "e"), width=20)
    assert not (tmp_path / "d").exists() and not (tmp_path / "e").exists()


def test_visits_are_bursts_of_one_animal(demo_dir: Path) -> None:
    truth = pd.read_csv(demo_dir / demo.TRUTH_FILE, dtype={"datetime": str})
    sizes = truth.groupby("visit").size()
    assert sizes.min() >= 1 and sizes.max() <= 5 and (sizes > 1).any()
    for _, rows in truth.groupby("visit"):
        assert rows[SITE_COL].nunique() == 1 and rows["label"].nunique() == 1
        assert rows["night"].nunique() == 1  # one visit, one light
        ids = rows[ID_COL].str[2:].astype(int).to_numpy()
        assert (np.diff(ids) == 1).all()  # a burst's frames have consecutive ids
        times = pd.to_datetime(rows["datetime"]).to_numpy()
        gaps = np.diff(times).astype("timedelta64[s]").astype(int)
        assert (gaps >= 1).all() and (gaps <= visits.RETRIGGER_SECONDS[1]).all()


def test_burst_frames_show_the_same_animal_moving() -> None:
    site = make_sites(0, 1, 1)[0][0]
    when = pd.Timestamp("2017-03-19 05:37:45").to_pydatetime()
    frames = [
        render_frame(
            np.random.default_rng([0, 3, k]),
            site,
            "leopard",
            320,
            180,
            Shot((0, 10, 1, 7), step, True, when),
        )[1]
        for k, step in enumerate((0.0, 0.05))
    ]
    first, second = frames
    assert first is not None and second is not None
    assert first[2:] == pytest.approx(second[2:], abs=2 / 180)  # the same animal's size
    assert second[0] - first[0] == pytest.approx(0.05, abs=2 / 320)  # walked 5% to the right


def test_activity_hours_follow_the_species() -> None:
    rng = np.random.default_rng(0)
    dawn, dusk = infobar.DAY_HOURS
    night = {
        label: np.mean([not dawn <= visits.draw_hour(rng, label) < dusk for _ in range(400)])
        for label in CLASSES
    }
    for nocturnal in ("civet_genet", "rodent"):
        assert night[nocturnal] > 0.85, nocturnal
    assert night["leopard"] > 0.6
    for diurnal in ("bird", "monkey_prosimian"):
        assert night[diurnal] < 0.2, diurnal
    assert 0.35 < night["blank"] < 0.65  # any hour: the night is half the day
    density = visits.activity("hog")
    assert density[6 * 60] > 3 * density[12 * 60]  # crepuscular: dawn, not noon


def test_clock_hours_and_night_follow_the_species(clock_dir: Path) -> None:
    truth = pd.read_csv(clock_dir / demo.TRUTH_FILE, dtype={"datetime": str})
    hours = pd.to_datetime(truth["datetime"]).dt.hour
    dark = (hours < 6) | (hours >= 19)
    assert truth.loc[dark, "night"].all()  # no daylight frame in the dark
    share = dark.groupby(truth["label"]).mean()
    assert share["civet_genet"] > share["monkey_prosimian"] + 0.4


def test_info_bars_in_the_real_layouts(clock_dir: Path) -> None:
    truth = pd.read_csv(clock_dir / demo.TRUTH_FILE, dtype={"datetime": str})
    layouts = json.loads((clock_dir / demo.INFO_FILE).read_text())["site_layouts"]
    assert set(truth["camera"]) == {layouts[s] for s in truth[SITE_COL]}
    for row in truth.head(40).itertuples():
        image = Image.open(clock_dir / row.filepath)
        rgb, gray = np.asarray(image.convert("RGB")), np.asarray(image.convert("L"))
        rows = infobar.strip_rows(gray)
        if row.camera == infobar.BUSHNELL_BAR:
            assert rows == bar_height(180, row.camera) and infobar.has_logo(rgb, rows)
        elif row.camera == NO_BAR:
            assert rows == 0


def test_night_frames_are_grayscale(clock_dir: Path, demo_dir: Path) -> None:
    for folder in (demo_dir, clock_dir):
        truth = pd.read_csv(folder / demo.TRUTH_FILE)
        night = truth[truth["night"]]
        assert 0 < len(night) < len(truth)
        for path, camera in zip(night["filepath"], night["camera"], strict=True):
            rgb = np.asarray(Image.open(folder / path).convert("RGB")).astype(int)
            # Above the logo (whose orange is no daylight) and its 16-px JPEG colour blocks.
            logo = round(LOGO_SHARE * bar_height(rgb.shape[0], camera))
            picture = rgb[: rgb.shape[0] - logo - 17]
            assert (picture[..., 0] == picture[..., 1]).all()
            assert (picture[..., 1] == picture[..., 2]).all()
        day = np.asarray(Image.open(folder / truth.loc[~truth["night"], "filepath"].iloc[0]))
        assert (day[..., 0] != day[..., 1]).any()


def test_switched_off_info_bar_is_dark_strip_with_text(tmp_path: Path) -> None:
    out = demo.generate_demo_data(tmp_path / "off", **SMALL, **OFF)
    for path in pd.read_csv(out / TRAIN_FEATURES)["filepath"][:10]:
        gray = np.asarray(Image.open(out / path).convert("L")).astype(float)
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
        elif any(
            _iou(d.bbox, (row.bbox_x, row.bbox_y, row.bbox_w, row.bbox_h)) > 0.5 for d in boxes
        ):
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
    train_sites, _ = make_sites(0, 2, 1)
    image, bbox = render_frame(np.random.default_rng(0), train_sites[0], "leopard", 960, 540)
    assert image.size == (960, 540) and image.mode == "RGB"
    assert bbox is not None and 0.04 <= bbox[2] <= 0.21
    blank, none = render_frame(np.random.default_rng(0), train_sites[0], "blank", 480, 270)
    assert none is None and blank.size == (480, 270)
    again, _ = render_frame(np.random.default_rng(0), train_sites[0], "leopard", 960, 540)
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
