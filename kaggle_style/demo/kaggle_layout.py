"""A second embedded competition in Kaggle's layout: `boreal`, five classes by camera.

Where the Conser-vision demo copies DrivenData's four tables, this one is what a Kaggle image
competition hands out: `train.csv` (`image_id`, `camera`, `label`), `sample_submission.csv`
(`image_id`, `label`) and the images in one sub-folder per camera under `train_images/` and
`test_images/`. Its classes, their number, the id and group columns and the submission kind all
differ from Conser-vision's, so a stage that still assumed Conser-vision would fail here. The
frames reuse the Conser-vision scenes and drawn animals (a deer is drawn as the duiker, a lynx
as the leopard, ...); every choice follows from the seed. Options make the layout variants the
tests need: probability submissions, `.png` files, two classes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from PIL import Image
from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass

from kaggle_style.config import ConfigError, Count, config_dict
from kaggle_style.demo.frames import render_frame
from kaggle_style.demo.plan import make_sites
from kaggle_style.demo.scenes import Site
from kaggle_style.errors import UserError
from kaggle_style.files import atomic_path, write_csv, write_json

# The boreal demo's classes and the Conser-vision drawing each is drawn with; its class shares.
BOREAL_CLASSES: dict[str, str] = {
    "deer": "antelope_duiker",
    "empty": "blank",
    "lynx": "leopard",
    "squirrel": "rodent",
    "wild_boar": "hog",
}
BOREAL_SHARE: dict[str, float] = {
    "deer": 0.3,
    "empty": 0.2,
    "lynx": 0.12,
    "squirrel": 0.2,
    "wild_boar": 0.18,
}
# The two-class variant: is there an animal at all (scored by ROC AUC in the tests).
ANIMAL_CLASSES: dict[str, str] = {"animal": "antelope_duiker", "empty": "blank"}
INFO_FILE = "demo.json"
TRUTH_FILE = "truth.csv"  # labels of every image, test included: for scoring the demo's submission
TRAIN_TABLE = "train.csv"
FORMAT_TABLE = "sample_submission.csv"
ZOOM = 3  # frames are drawn this many times larger, then cut to width x height
MIX_CONCENTRATION = 10.0  # each camera's class mix: milder than Conser-vision's 2.5 sites


class KaggleDemoError(UserError, ValueError):
    """An output folder the generator must not write into."""


@dataclass(config=ConfigDict(extra="forbid"), frozen=True)
class KaggleDemoConfig:
    """What the Kaggle-layout demo writes; the defaults are `make demo TASK=boreal`'s data (a
    generator's settings, not a command's: `task demo` names the demo, tests vary the layout)."""

    out: str = "data/boreal"
    seed: int = 0
    n_train: int = 300
    n_test: int = 100
    width: int = 160
    height: int = 120
    n_train_groups: Count = 8
    n_test_groups: Count = 3
    classes: Literal["boreal", "animal"] = "boreal"
    submission: Literal["label", "probabilities"] = "label"
    suffix: Literal[".jpg", ".png"] = ".jpg"
    id_column: str = "image_id"
    group_column: str = "camera"
    label_column: str = "label"
    jpeg_quality: Annotated[int, Field(ge=1, le=100)] = 90

    def __post_init__(self) -> None:
        if self.n_train < self.n_train_groups + 10 or self.n_test < self.n_test_groups:
            raise ConfigError(
                "n_train, n_test: need one image per camera and two train images per class "
                "beyond them; raise n_train or lower n_train_groups, n_test_groups",
                "n_train",
            )


def class_drawings(cfg: KaggleDemoConfig) -> dict[str, str]:
    """The competition's classes, sorted, and the drawing of each."""
    return BOREAL_CLASSES if cfg.classes == "boreal" else ANIMAL_CLASSES


def generate_kaggle_demo(cfg: KaggleDemoConfig) -> Path:
    """Write the Kaggle-layout folder `cfg` describes (tables, images, truth, demo.json)."""
    out = Path(cfg.out)
    if (out / TRAIN_TABLE).exists() and not (out / INFO_FILE).exists():
        raise KaggleDemoError(f"{out} holds data that the demo did not make; choose another --out")
    started = time.perf_counter()
    drawings = class_drawings(cfg)
    classes = list(drawings)
    shares = np.array([BOREAL_SHARE.get(c, 1.0) for c in classes])
    train_sites, test_sites = make_sites(cfg.seed, cfg.n_train_groups, cfg.n_test_groups)
    rows: list[dict[str, object]] = []
    for key, (split, sites, n) in enumerate(
        (("train", train_sites, cfg.n_train), ("test", test_sites, cfg.n_test)), start=1
    ):
        rng = np.random.default_rng([cfg.seed, 21, key])
        mixes = rng.dirichlet(MIX_CONCENTRATION * shares / shares.sum(), size=len(sites))
        size = rng.lognormal(0.0, 0.5, len(sites))
        cams = [*range(len(sites)), *rng.choice(len(sites), n - len(sites), p=size / size.sum())]
        labels = [classes[int(rng.choice(len(classes), p=mixes[c]))] for c in cams]
        if split == "train":  # every class in training, at least twice (stratified folds)
            for k, name in enumerate(classes):
                for j in (2 * k, 2 * k + 1):
                    labels[len(sites) + j] = name
        for index, (cam, label) in enumerate(zip(cams, labels, strict=True)):
            site = dataclasses.replace(sites[cam], name=f"cam_{int(sites[cam].name[1:]):03d}")
            image_id = hashlib.sha1(f"{cfg.seed}/{split}/{index}".encode()).hexdigest()[:10]
            path = f"{split}_images/{site.name}/{image_id}{cfg.suffix}"
            frame_rng = np.random.default_rng([cfg.seed, 22, key, index])
            image = _close_up(frame_rng, site, drawings[label], cfg.width, cfg.height)
            with atomic_path(out / path) as tmp:
                if cfg.suffix == ".jpg":
                    image.save(tmp, format="JPEG", quality=cfg.jpeg_quality)
                else:
                    image.save(tmp, format="PNG")
            rows.append({"id": image_id, "group": site.name, "label": label, "split": split})
    truth = pd.DataFrame(rows).sample(frac=1.0, random_state=cfg.seed).reset_index(drop=True)
    _write_tables(out, truth, classes, cfg)
    write_json(
        out / INFO_FILE,
        {
            "generator": "kaggle_style.demo.kaggle_layout v1",
            "config": config_dict(cfg),
            "classes": classes,
            "seconds": round(time.perf_counter() - started, 2),
            "train": _counts(truth, "train", classes),
            "test": _counts(truth, "test", classes),
        },
    )
    return out


def _close_up(
    rng: np.random.Generator, site: Site, drawing: str, width: int, height: int
) -> Image.Image:
    """A frame drawn ZOOM times larger, cut around the animal: animals fill more of the frame
    than in Conser-vision's wide shots, so a 48 px model learns them in a CPU minute."""
    image, bbox = render_frame(rng, site, drawing, width * ZOOM, height * ZOOM)
    if bbox is None:
        cx, cy = rng.uniform(0.2, 0.8), rng.uniform(0.3, 0.8)
    else:
        cx, cy = bbox[0] + bbox[2] / 2, bbox[1] + bbox[3] / 2
    left = int(np.clip(cx * width * ZOOM - width / 2, 0, width * (ZOOM - 1)))
    top = int(np.clip(cy * height * ZOOM - height / 2, 0, height * (ZOOM - 1)))
    return image.crop((left, top, left + width, top + height))


def _write_tables(
    out: Path, truth: pd.DataFrame, classes: list[str], cfg: KaggleDemoConfig
) -> None:
    """train.csv, sample_submission.csv (a Kaggle-style placeholder row each) and truth.csv."""
    names = {"id": cfg.id_column, "group": cfg.group_column, "label": cfg.label_column}
    train = truth[truth["split"] == "train"]
    test = truth[truth["split"] == "test"].sort_values("id")
    write_csv(out / TRAIN_TABLE, train[["id", "group", "label"]].rename(columns=names))
    fmt = pd.DataFrame({cfg.id_column: test["id"].to_numpy()})
    if cfg.submission == "label":
        fmt[cfg.label_column] = classes[0]
    else:
        for name in classes:
            fmt[name] = 1.0 / len(classes)
    write_csv(out / FORMAT_TABLE, fmt)
    write_csv(out / TRUTH_FILE, truth.rename(columns=names))


def _counts(truth: pd.DataFrame, split: str, classes: list[str]) -> dict[str, object]:
    rows = truth[truth["split"] == split]
    return {
        "images": len(rows),
        "cameras": sorted(rows["group"].unique()),
        "classes": {c: int((rows["label"] == c).sum()) for c in classes},
    }


def describe_kaggle_demo(out: Path) -> str:
    """One line a user reads after generation."""
    import json

    info = json.loads((out / INFO_FILE).read_text())
    train, test = info["train"], info["test"]
    per_class = ", ".join(
        f"{c} {train['classes'][c]}/{test['classes'][c]}" for c in info["classes"]
    )
    return (
        f"Kaggle-layout demo in {out} ({info['seconds']:.1f} s): {train['images']} train images "
        f"from {len(train['cameras'])} cameras, {test['images']} test images from "
        f"{len(test['cameras'])} unseen cameras; per class (train/test): {per_class}"
    )
