"""A synthetic Conser-vision dataset in DrivenData's exact layout.

The real images cannot ship with the project and no detector knows drawn animals, so the demo
makes its own: the same four tables, JPEGs and a MegaDetector file. It poses the real problem in
miniature (test sites never seen in training, one background, light and class mix per site,
small animals that crops reveal better than whole frames, night IR frames, a camera info bar
with its clock, bursts of frames per visit, species active at their own hours, a detector that
misses and hallucinates), so a model that wins here wins for the same reasons as on the real
data. Everything follows from the seed: the same seed gives byte-identical files. With
`timestamps: false, bursts: false` the files are byte-identical to the generator before clocks
and bursts (the same random streams), which is how a restructure is checked against old figures.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
from PIL import Image
from pydantic import Field

from kaggle_style.config import ConfigError, Count, Fraction, config_dict, stage_config
from kaggle_style.constants import FILEPATH_COL, ID_COL, LABEL_COL, SITE_COL
from kaggle_style.demo.detections import simulate_detections
from kaggle_style.demo.frames import Shot, render_frame
from kaggle_style.demo.infobar import draw_layout
from kaggle_style.demo.plan import assign_sites, class_counts, make_sites
from kaggle_style.demo.scenes import Site, make_site
from kaggle_style.demo.visits import BURST_SHARE, make_shots, plan_visits
from kaggle_style.detect import mdjson
from kaggle_style.errors import UserError
from kaggle_style.files import atomic_path, git_commit, write_csv, write_json
from kaggle_style.task import CONSERVISION_CLASSES as CLASSES
from kaggle_style.task import SUBMISSION_FORMAT, TEST_FEATURES, TRAIN_FEATURES, TRAIN_LABELS

__all__ = [
    "DemoDataConfig",
    "class_counts",
    "generate_demo_data",
    "make_site",
    "make_sites",
    "render_frame",
]

GENERATOR_VERSION = 2
DETECTIONS_FILE = "detections.json"
INFO_FILE = "demo.json"
# Labels of every image, test included, for scoring demo submissions; not a DrivenData file.
TRUTH_FILE = "truth.csv"
DETECTOR_NAME = "simulated (demo-data generator)"
SPLITS = ("train", "test")


class DemoDataError(UserError, ValueError):
    """An output folder the generator must not write into."""


@stage_config
class DemoDataConfig:
    """What `demo-data` makes; the defaults fit a CPU demo of a few minutes on 2 cores."""

    out: str = "data/demo"
    """folder to write"""
    seed: int = 0
    """the same seed gives byte-identical files"""
    n_train: int = 480
    """training images"""
    n_test: int = 160
    """test images"""
    width: int = 320
    """frame width in px"""
    height: int = 180
    """frame height in px"""
    n_train_sites: Count = 16
    """camera sites of the training images"""
    n_test_sites: Count = 4
    """camera sites of the test images (none shared with training)"""
    jpeg_quality: Annotated[int, Field(ge=1, le=100)] = 90
    """JPEG quality of the written frames"""
    miss_rate: Fraction = 0.1
    """share of animals the simulated detector does not find"""
    timestamps: bool = True
    """camera clocks in the real bars' layouts, species' activity hours"""
    bursts: bool = True
    """1-max_burst frames per visit, same animal, seconds apart"""
    max_burst: Annotated[int, Field(ge=1, le=len(BURST_SHARE))] = 5
    """most frames of one visit (a burst)"""

    def __post_init__(self) -> None:
        """Checks across fields: the frame's size, and at least one image per site."""
        if self.width < 32 or self.height < 18:
            raise ConfigError(
                f"width, height: frames of {self.width}x{self.height} px are too "
                "small (at least 32x18)",
                "width" if self.width < 32 else "height",
            )
        if self.n_train < self.n_train_sites:
            raise ConfigError(
                f"n_train: {self.n_train} images cannot fill {self.n_train_sites} "
                "train sites (one image per site at least); lower n_train_sites",
                "n_train",
            )
        if self.n_test < self.n_test_sites:
            raise ConfigError(
                f"n_test: {self.n_test} images cannot fill {self.n_test_sites} "
                "test sites (one image per site at least); lower n_test_sites",
                "n_test",
            )


def generate_demo_data(
    out: str | Path,
    seed: int = 0,
    n_train: int = DemoDataConfig.n_train,
    n_test: int = DemoDataConfig.n_test,
    width: int = DemoDataConfig.width,
    height: int = DemoDataConfig.height,
    **options: Any,
) -> Path:
    """Write the whole demo folder (tables, JPEGs, detections.json, demo.json); return it.

    `options`: any other DemoDataConfig field (n_train_sites, timestamps, bursts, ...).
    """
    cfg = DemoDataConfig(
        out=str(out),
        seed=seed,
        n_train=n_train,
        n_test=n_test,
        width=width,
        height=height,
        **options,
    )
    return generate(cfg)


@dataclass(frozen=True)
class _Planned:
    split: str
    site: str
    label: str
    shot: Shot | None
    visit: str


def _plan(
    cfg: DemoDataConfig, sites: dict[str, Site], train_sites: list[Site], test_sites: list[Site]
) -> list[_Planned]:
    """Every image in id order: its split, site, label and (with clocks or bursts) its shot."""
    plan: list[_Planned] = []
    for key, (split, split_sites, n) in enumerate(
        (("train", train_sites, cfg.n_train), ("test", test_sites, cfg.n_test)), start=1
    ):
        rows = assign_sites(np.random.default_rng([cfg.seed, key]), split_sites, n)
        if cfg.bursts:
            visits = plan_visits(np.random.default_rng([cfg.seed, 5, key]), rows, cfg.max_burst)
        else:
            visits = [[i] for i in range(len(rows))]
        shots: dict[int, Shot] = {}
        if cfg.bursts or cfg.timestamps:
            shots = make_shots(cfg.seed, key, visits, rows, sites, cfg.timestamps)
        for v, members in enumerate(visits):
            for i in members:
                site, label = rows[i]
                plan.append(_Planned(split, site, label, shots.get(i), f"{split}/{v}"))
    return plan


def generate(cfg: DemoDataConfig) -> Path:
    """Write the demo folder that `cfg` describes; return it."""
    out = Path(cfg.out)
    if (out / TRAIN_FEATURES).exists() and not (out / INFO_FILE).exists():
        # Regenerating removes stale images, which must never touch a real data folder.
        raise DemoDataError(f"{out} holds data that demo-data did not make; choose another --out")
    started = time.perf_counter()
    train_sites, test_sites = make_sites(cfg.seed, cfg.n_train_sites, cfg.n_test_sites)
    if cfg.timestamps:  # each camera's model (its info-bar layout), from a stream of its own
        train_sites, test_sites = (
            [
                dataclasses.replace(s, layout=draw_layout(np.random.default_rng([cfg.seed, 9, i])))
                for i, s in enumerate(group, start=offset)
            ]
            for group, offset in ((train_sites, 0), (test_sites, len(train_sites)))
        )
    sites = {s.name: s for s in [*train_sites, *test_sites]}
    plan = _plan(cfg, sites, train_sites, test_sites)
    rows, detections = (
        [],
        mdjson.DetectionFile(
            categories={"1": "animal"}, info={"detector": DETECTOR_NAME, "seed": cfg.seed}
        ),
    )
    for index, item in enumerate(plan):
        image_id = f"ZJ{index:06d}"
        filepath = f"{item.split}_features/{image_id}.jpg"
        rng = np.random.default_rng([cfg.seed, 3, index])
        site = sites[item.site]
        image, bbox = render_frame(rng, site, item.label, cfg.width, cfg.height, item.shot)
        with atomic_path(out / filepath) as tmp:
            image.save(tmp, format="JPEG", quality=cfg.jpeg_quality)
        det_rng = np.random.default_rng([cfg.seed, 4, index])
        detections.images[filepath] = simulate_detections(det_rng, bbox, cfg.miss_rate)
        night = _is_gray(image) if item.shot is None else item.shot.night
        extra = (
            ()
            if item.shot is None
            else (item.visit, item.shot.when.isoformat(), site.layout if cfg.timestamps else "")
        )
        rows.append((image_id, filepath, item.site, item.label, item.split, night, bbox, *extra))
    truth = _truth_table(rows)
    _write_tables(out, truth)
    mdjson.write(out / DETECTIONS_FILE, detections)
    _remove_stale_images(out, set(truth[FILEPATH_COL]))
    info = _metadata(cfg, truth, train_sites, test_sites, time.perf_counter() - started)
    write_json(out / INFO_FILE, info)
    return out


def _is_gray(image: Image.Image) -> bool:
    arr = np.asarray(image)
    return bool((arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all())


def _truth_table(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """Labels, true boxes and, for visits, the visit, the true clock and the camera layout."""
    frame = pd.DataFrame(
        [r[:6] for r in rows], columns=[ID_COL, FILEPATH_COL, SITE_COL, LABEL_COL, "split", "night"]
    )
    boxes = np.array([r[6] if r[6] is not None else (np.nan,) * 4 for r in rows], dtype=float)
    for i, name in enumerate(("bbox_x", "bbox_y", "bbox_w", "bbox_h")):
        frame[name] = boxes[:, i]
    if rows and len(rows[0]) > 7:
        for i, name in enumerate(("visit", "datetime", "camera"), start=7):
            frame[name] = [r[i] for r in rows]
    return frame


def _write_tables(out: Path, truth: pd.DataFrame) -> None:
    """The four DrivenData tables, formatted like the real ones (one-hot floats, 1.0/0.0)."""
    train = truth[truth["split"] == "train"]
    test = truth[truth["split"] == "test"]
    write_csv(out / TRAIN_FEATURES, train[[ID_COL, FILEPATH_COL, SITE_COL]])
    onehot = pd.DataFrame({ID_COL: train[ID_COL].to_numpy()})
    for c in CLASSES:
        onehot[c] = (train[LABEL_COL].to_numpy() == c).astype(float)
    write_csv(out / TRAIN_LABELS, onehot, float_format="%.1f")
    write_csv(out / TEST_FEATURES, test[[ID_COL, FILEPATH_COL, SITE_COL]])
    fmt = pd.DataFrame({ID_COL: test[ID_COL].to_numpy()})
    for c in CLASSES:
        fmt[c] = 1.0 / len(CLASSES)
    write_csv(out / SUBMISSION_FORMAT, fmt)
    write_csv(out / TRUTH_FILE, truth)


def _remove_stale_images(out: Path, keep: set[str]) -> None:
    """A regenerated folder must match its tables: drop images of an earlier, larger demo."""
    for split in ("train_features", "test_features"):
        for path in sorted((out / split).glob("ZJ*.jpg")):
            if f"{split}/{path.name}" not in keep:
                path.unlink()


def _metadata(
    cfg: DemoDataConfig,
    truth: pd.DataFrame,
    train_sites: list[Site],
    test_sites: list[Site],
    seconds: float,
) -> dict[str, Any]:
    def split_info(split: str, split_sites: list[Site]) -> dict[str, Any]:
        rows = truth[truth["split"] == split]
        info: dict[str, Any] = {
            "images": len(rows),
            "classes": {c: int((rows[LABEL_COL] == c).sum()) for c in CLASSES},
            "night": int(rows["night"].sum()),
            "sites": [s.name for s in split_sites],
        }
        if "visit" in rows:
            info["visits"] = int(rows["visit"].nunique())
        return info

    info = {
        "generator": f"kaggle_style.demo v{GENERATOR_VERSION}",
        "git_commit": git_commit(),
        "config": config_dict(cfg),
        "seconds": round(seconds, 2),
        "train": split_info("train", train_sites),
        "test": split_info("test", test_sites),
        "site_class_priors": {
            s.name: dict(zip(CLASSES, (round(p, 4) for p in s.prior), strict=True))
            for s in [*train_sites, *test_sites]
        },
        "files": {
            "detections": DETECTIONS_FILE,
            "truth": f"{TRUTH_FILE} (labels and true boxes of every image, test included; with "
            "bursts or clocks also the visit, true time and camera layout; for scoring "
            "demo submissions and meta readings, not part of the DrivenData layout)",
        },
    }
    if cfg.timestamps:
        info["site_layouts"] = {s.name: s.layout for s in [*train_sites, *test_sites]}
    return info


def describe(info: dict[str, Any]) -> str:
    """One paragraph a user reads after generation."""
    cfg = info["config"]
    train, test = info["train"], info["test"]
    classes = ", ".join(f"{c} {train['classes'][c]}/{test['classes'][c]}" for c in CLASSES)
    extra = ""
    if "visits" in train:
        extra += (
            f"; visits {train['visits']}/{test['visits']} "
            f"(bursts of 1-{cfg.get('max_burst', 1) if cfg.get('bursts') else 1} frames)"
        )
    if "site_layouts" in info:
        layouts = pd.Series(info["site_layouts"]).value_counts()
        extra += "; camera layouts by site: " + ", ".join(f"{k} {v}" for k, v in layouts.items())
    return (
        f"demo data in {cfg['out']} (seed {cfg['seed']}, {cfg['width']}x{cfg['height']} px, "
        f"{info['seconds']:.1f} s): {train['images']} train images from {len(train['sites'])} "
        f"sites, {test['images']} test images from {len(test['sites'])} unseen sites; "
        f"night IR frames {train['night']}/{test['night']}{extra}; per class (train/test): "
        f"{classes}; simulated detections in {DETECTIONS_FILE}, true labels and boxes in "
        f"{TRUTH_FILE}."
    )
