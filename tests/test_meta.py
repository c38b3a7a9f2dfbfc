"""`kaggle-style meta` reads every visible clock of the real Taï frames exactly, leaves frames
without one unread (never a guess), tells IR frames and camera layouts apart, and groups bursts
into sequences; on demo data its readings match the generator's truth."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kaggle_style.cli import main
from kaggle_style.config import ConfigError
from kaggle_style.constants import ID_COL, SITE_COL
from kaggle_style.data.meta_file import META_COLUMNS, MetaError, read_meta
from kaggle_style.demo.generator import TRUTH_FILE, generate_demo_data
from kaggle_style.errors import UserError
from kaggle_style.meta import infobar, ocr
from kaggle_style.meta.run import MetaConfig, meta_frame
from kaggle_style.meta.sequences import assign_sequences
from kaggle_style.task import TEST_FEATURES, TRAIN_FEATURES

# What the 9 real frames show, read by eye from the frames themselves (an enlarged view of each
# bar): the clock ("" where no text is visible), the layout, and whether the picture is IR grey.
TAI = {
    "ZJ000006": ("2017-03-19T05:37:45", infobar.BUSHNELL_BAR, 1),
    "ZJ000014": ("2016-11-13T15:59:55", infobar.BUSHNELL_BAR, 1),  # IR in the afternoon
    "ZJ000268": ("2016-12-28T22:52:55", infobar.BUSHNELL_BAR, 1),
    "ZJ016488": ("2016-11-21T19:42:35", infobar.BUSHNELL_BAR, 1),
    "ZJ016498": ("", "", 1),  # 960x515: the strip is cut off
    "ZJ016503": ("2017-01-17T12:51:50", infobar.BUSHNELL_BAR, 0),
    "ZJ016535": ("2017-01-28T12:34:31", infobar.BUSHNELL_BAR, 0),
    "ZJ016556": ("2016-11-24T09:14:37", infobar.BUSHNELL_OVERLAY, 0),  # "Bushnell 2016-11-24"
    "ZJ016561": ("", "", 0),  # no text at all
}
TRAIN_IDS = ("ZJ000006", "ZJ000014", "ZJ000268")


@pytest.fixture(scope="module")
def tai_folder(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real frames as a DrivenData folder (links, no copies): 3 train and 6 test ids."""
    root = tmp_path_factory.mktemp("tai")
    rows: dict[str, list[str]] = {"train": [], "test": []}
    for image_id in TAI:
        split = "train" if image_id in TRAIN_IDS else "test"
        (root / f"{split}_features").mkdir(exist_ok=True)
        os.symlink(
            shared_data / "tai_images" / f"{image_id}.jpg",
            root / f"{split}_features" / f"{image_id}.jpg",
        )
        rows[split].append(f"{image_id},{split}_features/{image_id}.jpg,TAI{len(rows[split]) % 2}")
    for split, name in (("train", TRAIN_FEATURES), ("test", TEST_FEATURES)):
        (root / name).write_text("id,filepath,site\n" + "\n".join(rows[split]) + "\n")
    return root


def test_reads_every_visible_tai_clock_exactly(tai_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "meta.csv"
    assert main(["meta", "--data", str(tai_folder), "--out", str(out), "--workers", "1"]) == 0
    meta = read_meta(out).set_index(ID_COL)
    assert list(read_meta(out).columns) == list(META_COLUMNS)
    assert set(meta.index) == set(TAI)
    for image_id, (when, camera, night) in TAI.items():
        row = meta.loc[image_id]
        assert row["datetime"] == when, image_id
        assert row["camera"] == camera, image_id
        assert row["night"] == night, image_id
        if when:
            expected = dt.datetime.fromisoformat(when)
            assert row["hour"] == pytest.approx(infobar.hour_of(expected), abs=1e-5)
            assert 0.5 <= row["confidence"] <= 1.0
        else:
            assert np.isnan(row["hour"]) and row["confidence"] == 0.0
    # In the file itself an unread clock is an empty cell, not a placeholder.
    line = next(t for t in out.read_text().splitlines() if t.startswith("ZJ016561,"))
    assert line.split(",")[1:3] == ["", ""]


def test_sequences_on_the_real_frames(tai_folder: Path, tmp_path: Path) -> None:
    ids = list(TAI)
    paths = [tai_folder / f"{'train' if i in TRAIN_IDS else 'test'}_features/{i}.jpg" for i in ids]
    frame = meta_frame(ids, paths, ["one site"] * len(ids), gap_seconds=60, workers=1)
    # Months apart: every frame is its own sequence, the unread ones included.
    assert frame["sequence"].nunique() == len(ids)
    assert frame["sequence"].str.startswith("one site/").all()


def test_assign_sequences_follows_the_gap() -> None:
    t0 = pd.Timestamp("2017-03-19 05:37:45")
    times = [
        t0,
        t0 + pd.Timedelta(seconds=50),
        t0 + pd.Timedelta(seconds=100),
        t0 + pd.Timedelta(seconds=161),
        t0,
        None,
        "",
        t0 + pd.Timedelta(seconds=5),
    ]
    sites = ["A", "A", "A", "A", "B", "A", "A", "A"]
    got = assign_sequences(sites, times, 60)
    assert got.dtype.kind == "U" and len(got) == len(times)
    # a chain of 50-s steps is one visit though it spans 100 s; a 61-s gap starts a new one
    assert got[0] == got[1] == got[2] == got[7] and got[3] != got[2]
    assert got[4] == "B/0"  # another site never joins, whatever its time
    assert got[5] != got[6] and {got[5], got[6]}.isdisjoint(got[:5])  # untimed: alone
    assert all(s.startswith("A/") for i, s in enumerate(got) if sites[i] == "A")
    assert assign_sequences(sites, times, 0)[1] != assign_sequences(sites, times, 0)[0]
    assert len(set(assign_sequences(sites, times, 1000)[[0, 1, 2, 3, 7]])) == 1
    with pytest.raises(ValueError, match="gap_seconds"):
        assign_sequences(sites, times, -1)
    with pytest.raises(ConfigError, match="gap_seconds"):
        MetaConfig(gap_seconds=-5)


@pytest.mark.parametrize(
    ("text", "layout", "expected"),
    [
        ("03-19-2017 05:37:45", infobar.BUSHNELL_BAR, "2017-03-19T05:37:45"),
        ("Bushnell 2016-11-24 09:14:37", "bottom", "2016-11-24T09:14:37"),
        ("19/03/2017 05:37:45", "top", "2017-03-19T05:37:45"),  # day first: 19 is no month
        ("03/04/2017 1:02:03 PM", "top", "2017-03-04T13:02:03"),
        ("02-30-2017 05:37:45", infobar.BUSHNELL_BAR, None),  # no 30 February
        ("03-19-2017 05:37", infobar.BUSHNELL_BAR, None),  # no seconds: not a whole reading
        ("03-19-201/ 05:37:45", infobar.BUSHNELL_BAR, None),  # a misread year
        ("41-21-2016 19:42:35", infobar.BUSHNELL_BAR, None),  # a misread month
    ],
)
def test_parse_stamp_reads_whole_valid_clocks_only(
    text: str, layout: str, expected: str | None
) -> None:
    parsed = infobar.parse_stamp(text, layout)
    assert (None if parsed is None else parsed[0].isoformat()) == expected


def test_night_flag_from_picture_then_clock() -> None:
    grey = np.full((60, 80, 3), 120, np.uint8)
    colour = grey.copy()
    colour[..., 1] = 90
    assert infobar.channel_spread(grey) == 0.0 and infobar.night_flag(0.0, 14.0) == 1
    assert infobar.night_flag(infobar.channel_spread(colour), None) == 0
    between = (infobar.IR_SPREAD + infobar.COLOUR_SPREAD) / 2
    assert infobar.night_flag(between, 22.5) == 1 and infobar.night_flag(between, 11.0) == 0
    assert infobar.night_flag(between, None) is None  # undecided, not a guess


def test_unreadable_files_are_unread_rows(tmp_path: Path) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    frame = meta_frame(["x"], [bad], ["S"], workers=1)
    row = frame.iloc[0]
    assert row["datetime"] == "" and np.isnan(row["hour"]) and pd.isna(row["night"])
    assert row["sequence"] == "S/0" and row["confidence"] == 0.0


def test_missing_tesseract_is_a_user_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import pytesseract

    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "no-such-tesseract")
    with pytest.raises(UserError, match="apt-get install -y tesseract-ocr"):
        ocr.tesseract_version()


def test_read_meta_checks_the_contract(tmp_path: Path) -> None:
    path = tmp_path / "meta.csv"
    path.write_text("id,datetime,hour\nZJ1,,\n")
    with pytest.raises(MetaError, match="missing column"):
        read_meta(path)
    path.write_text(
        "id,datetime,hour,camera,night,confidence,sequence\n"
        "ZJ1,2017-03-19T05:37:45,5.629,bushnell_bar,1,0.9,S/0\nZJ2,,,,,0,S/1\n"
    )
    frame = read_meta(path, ids=["ZJ1", "ZJ2"])
    assert frame.loc[1, "datetime"] == "" and frame.loc[1, "camera"] == ""
    assert pd.isna(frame.loc[1, "night"]) and frame.loc[0, "night"] == 1
    with pytest.raises(MetaError, match="ZJ3"):
        read_meta(path, ids=["ZJ1", "ZJ3"])


@pytest.mark.heavy
def test_demo_clocks_are_read_as_the_generator_wrote_them(tmp_path: Path) -> None:
    data = generate_demo_data(
        tmp_path / "demo",
        seed=4,
        n_train=60,
        n_test=20,
        width=320,
        height=180,
        n_train_sites=6,
        n_test_sites=2,
    )
    out = tmp_path / "meta.csv"
    assert main(["meta", "--data", str(data), "--out", str(out), "--workers", "2", "--quiet"]) == 0
    meta = read_meta(out).merge(
        pd.read_csv(data / TRUTH_FILE, dtype={"datetime": str}), on=ID_COL, suffixes=("", "_true")
    )
    strip = meta["camera_true"] == infobar.BUSHNELL_BAR
    assert strip.sum() > 30
    assert (meta.loc[strip, "datetime"] == meta.loc[strip, "datetime_true"]).all()
    assert (meta.loc[strip, "camera"] == infobar.BUSHNELL_BAR).all()
    read = meta["datetime"] != ""
    assert (meta.loc[read, "datetime"] == meta.loc[read, "datetime_true"]).all()  # no guess
    assert (meta.loc[meta["camera_true"] == "none", "datetime"] == "").all()
    assert (meta["night"].astype(bool) == meta["night_true"]).all()
    # A burst within the default gap is one sequence, and sequences never span sites.
    for _, visit in meta[read].groupby("visit"):
        times = pd.to_datetime(visit["datetime"]).sort_values()
        if (times.diff().dt.total_seconds().fillna(0) <= 60).all():
            assert visit["sequence"].nunique() == 1
    assert (meta.groupby("sequence")[SITE_COL].nunique() == 1).all()


def test_odd_frames_are_listed_not_fatal(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Case 5: a tiny white image, a 9000x90 strip and a clock in a year pandas cannot hold are
    unread rows, each listed with its reason; the other frames are still read."""
    from dataclasses import replace

    from PIL import Image

    from kaggle_style.demo.frames import Shot, render_frame
    from kaggle_style.demo.plan import make_sites

    site = replace(make_sites(0, 1, 1)[0][0], layout=infobar.BUSHNELL_BAR)
    paths = {
        "white": tmp_path / "white.jpg",
        "wide": tmp_path / "wide.jpg",
        "future": tmp_path / "future.jpg",
        "normal": tmp_path / "normal.jpg",
    }
    Image.new("RGB", (3, 2), "white").save(paths["white"])
    Image.new("RGB", (9000, 90), "gray").save(paths["wide"])
    for name, year in (("future", 2999), ("normal", 2017)):
        when = dt.datetime(year, 3, 19, 5, 37, 45)
        image, _ = render_frame(
            np.random.default_rng(1),
            site,
            "leopard",
            320,
            180,
            Shot((0, 1, 2, 3), 0.0, False, when),
        )
        image.save(paths[name], quality=95)
    frame = meta_frame(list(paths), list(paths.values()), ["S"] * 4, workers=1).set_index(ID_COL)
    listed = capsys.readouterr().err
    assert "3 odd frame(s) left unread" in listed
    assert "white: odd frame size 3x2" in listed and "wide: odd frame size 9000x90" in listed
    assert "future: its clock reads the year 2999" in listed
    assert (frame.loc[["white", "wide", "future"], "datetime"] == "").all()
    assert frame.loc["normal", "datetime"] == "2017-03-19T05:37:45"


@pytest.mark.parametrize(
    ("column", "value", "says"),
    [
        ("night", "2", "'night' is not 0 or 1"),
        ("night", "yes", "'night' is not 0 or 1"),
        ("datetime", "2017-03-19T05:37:45+02:00", "without a UTC offset"),
        ("datetime", "9999-01-01T00:00:00", "years 1678-2261"),
        ("datetime", "yesterday", "ISO 8601"),
        ("hour", "25", "'hour' is not a number from 0 to 24"),
        ("confidence", "-1", "'confidence' is not a number from 0 to 1"),
    ],
)
def test_hand_edited_meta_is_one_line_in_every_reader(
    tmp_path: Path, column: str, value: str, says: str
) -> None:
    """Case 5: read_meta (what ensemble, report and predict read) names the column and id."""
    row = {
        "id": "ZJ1",
        "datetime": "2017-03-19T05:37:45",
        "hour": "5.6",
        "camera": "",
        "night": "1",
        "confidence": "0.9",
        "sequence": "S/0",
        column: value,
    }
    path = tmp_path / "meta.csv"
    path.write_text(",".join(row) + "\n" + ",".join(row.values()) + "\n")
    with pytest.raises(MetaError, match=says) as err:
        read_meta(path)
    assert "ZJ1" in str(err.value) and "\n" not in str(err.value)
