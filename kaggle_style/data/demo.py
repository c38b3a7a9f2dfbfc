"""A synthetic Conser-vision dataset in DrivenData's exact layout.

The real images cannot ship with the project and no detector knows drawn animals, so the demo
makes its own: the same four tables, JPEGs and a MegaDetector file. It poses the real problem in
miniature (test sites never seen in training, one background, light and class mix per site,
small animals that crops reveal better than whole frames, night IR frames, a burned-in info
bar, a detector that misses and hallucinates), so a model that wins here wins for the same reasons
as on the real data. Everything follows from the seed: the same seed gives byte-identical files.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from kaggle_style.config import add_config_arguments, config_dict, resolve_config
from kaggle_style.constants import (
    CLASSES,
    FILEPATH_COL,
    ID_COL,
    LABEL_COL,
    SITE_COL,
    SUBMISSION_FORMAT,
    TEST_FEATURES,
    TRAIN_FEATURES,
    TRAIN_LABELS,
)
from kaggle_style.detect import mdjson
from kaggle_style.io import atomic_path, git_commit, write_csv, write_json

BBox = tuple[float, float, float, float]  # normalised x, y, w, h
Color = tuple[int, int, int]

GENERATOR_VERSION = 1
DETECTIONS_FILE = "detections.json"
META_FILE = "demo.json"
# Labels of every image, test included, for scoring demo submissions; not a DrivenData file.
TRUTH_FILE = "truth.csv"
DETECTOR_NAME = "simulated (demo-data generator)"

# Overall class shares, close to the real data's and with hog the rarest.
CLASS_SHARE: dict[str, float] = {
    "antelope_duiker": 0.15,
    "bird": 0.10,
    "blank": 0.13,
    "civet_genet": 0.14,
    "hog": 0.06,
    "leopard": 0.13,
    "monkey_prosimian": 0.15,
    "rodent": 0.12,
}
# Dirichlet concentration of a site's class mix. 2.5 is what the real Conser-vision train labels
# give (a moment estimate over its 148 sites, net of sampling noise: about 2.6): real sites
# differ a lot, most being dominated by two or three classes.
SITE_PRIOR_CONCENTRATION = 2.5
# Chance of a night (IR) frame before the site's factor: civets and rodents are nocturnal.
NOCTURNAL: dict[str, float] = {
    "antelope_duiker": 0.3,
    "bird": 0.05,
    "blank": 0.3,
    "civet_genet": 0.85,
    "hog": 0.35,
    "leopard": 0.45,
    "monkey_prosimian": 0.05,
    "rodent": 0.7,
}
# Animal width as a share of the frame width: small, as in real camera-trap frames.
WIDTH_SHARE: dict[str, tuple[float, float]] = {
    "antelope_duiker": (0.08, 0.18),
    "bird": (0.05, 0.10),
    "civet_genet": (0.09, 0.17),
    "hog": (0.09, 0.18),
    "leopard": (0.10, 0.20),
    "monkey_prosimian": (0.06, 0.13),
    "rodent": (0.045, 0.08),
}
# Width / height of each animal's drawing.
ASPECT: dict[str, float] = {
    "antelope_duiker": 1.3,
    "bird": 1.0,
    "civet_genet": 2.4,
    "hog": 1.5,
    "leopard": 2.0,
    "monkey_prosimian": 0.9,
    "rodent": 1.8,
}
BAR_SHARE = 0.055  # info-bar height as a share of the frame height
CUT_BY_BORDER = 0.15  # share of animals that stand partly outside the frame
OCCLUDED = 0.3  # share of frames with foreground vegetation drawn over the scene


@dataclass
class DemoDataConfig:
    """What `demo-data` makes; the defaults fit a 10-minute CPU demo that also trains a model."""

    out: str = "data/demo"
    seed: int = 0
    n_train: int = 480
    n_test: int = 160
    width: int = 320
    height: int = 180
    n_train_sites: int = 16
    n_test_sites: int = 4
    jpeg_quality: int = 90
    miss_rate: float = 0.1  # share of animals the simulated detector does not find


@dataclass(frozen=True)
class Site:
    """One camera: everything that makes its frames recognisable, in resolution-free units."""

    name: str
    camera: str
    seed: int  # fixes the background's texture and vegetation at any size
    canopy: Color
    understory: Color
    ground: Color
    horizon: float  # the ground starts at this share of the height
    trunks: tuple[tuple[float, float, Color], ...]  # x centre, width (shares of width), colour
    gain: float
    cast: tuple[float, float, float]
    night_factor: float
    temperature: float
    start: dt.date
    prior: tuple[float, ...]  # class mix, CLASSES order


# ----------------------------------------------------------------------------------------- sites


def make_site(rng: np.random.Generator, name: str) -> Site:
    """A camera site with its own scene, light and class mix (drawn from `rng`)."""
    share = np.array([CLASS_SHARE[c] for c in CLASSES])
    prior = rng.dirichlet(SITE_PRIOR_CONCENTRATION * share / share.sum())
    n_trunks = int(rng.integers(2, 7))
    trunks = tuple(
        (
            float(rng.uniform(0.0, 1.0)),
            float(rng.uniform(0.015, 0.08)),
            _jitter(rng, (95, 80, 62), 0.3),
        )
        for _ in range(n_trunks)
    )
    return Site(
        name=name,
        camera=f"TAI-{int(rng.integers(1, 100)):02d}{'ABCDEFGH'[int(rng.integers(8))]}",
        seed=int(rng.integers(2**31)),
        canopy=_jitter(rng, (40, 70, 35), 0.35),
        understory=_jitter(rng, (85, 110, 65), 0.3),
        ground=_jitter(rng, (105, 85, 60), 0.3),
        horizon=float(rng.uniform(0.45, 0.7)),
        trunks=trunks,
        gain=float(rng.uniform(0.75, 1.25)),
        cast=tuple(float(v) for v in rng.uniform(0.88, 1.12, 3)),
        night_factor=float(rng.uniform(0.5, 1.1)),
        temperature=float(rng.uniform(20.0, 29.0)),
        start=dt.date(2017, 1, 1) + dt.timedelta(days=int(rng.integers(0, 300))),
        prior=tuple(float(p) for p in prior),
    )


def site_background(site: Site, width: int, height: int) -> Image.Image:
    """The site's empty scene at any size: the same vegetation whatever the resolution."""
    rng = np.random.default_rng(site.seed)
    rows = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    t = np.clip(rows / site.horizon, 0.0, 1.0)
    above = np.asarray(site.canopy, np.float32) * (1 - t) + np.asarray(site.understory) * t
    depth = np.clip((rows - site.horizon) / (1 - site.horizon), 0.0, 1.0)
    below = np.asarray(site.ground, np.float32) * (0.75 + 0.4 * depth)
    arr = np.where(rows < site.horizon, above, below) * np.ones((1, width, 1), np.float32)
    arr *= 1 + 0.35 * _smooth_noise(rng, (12, 20), width, height)[..., None]
    arr *= 1 + 0.15 * _smooth_noise(rng, (45, 80), width, height)[..., None]
    image = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    pen = _Pen(image)
    _draw_vegetation(pen, rng, site)
    return image


def _draw_vegetation(pen: _Pen, rng: np.random.Generator, site: Site) -> None:
    """Sky gaps, leaves, trunks and litter: the fixed details that identify a site."""
    for _ in range(int(rng.integers(2, 8))):  # sky seen through the canopy
        x, y = rng.uniform(0, 1), rng.uniform(0, 0.25 * site.horizon)
        r = rng.uniform(0.01, 0.05)
        pen.ellipse(x, y, r, r * 1.78, _jitter(rng, (200, 215, 220), 0.1))
    for _ in range(70):  # far foliage
        x, y = rng.uniform(0, 1), rng.uniform(0, site.horizon)
        r = rng.uniform(0.01, 0.04)
        pen.ellipse(x, y, r, r * rng.uniform(0.8, 2.0), _jitter(rng, site.understory, 0.35))
    for x, w, color in site.trunks:
        bottom = site.horizon + rng.uniform(0.0, 0.15)
        lean = rng.uniform(-0.03, 0.03)
        pen.polygon(
            [(x - w / 2 + lean, 0), (x + w / 2 + lean, 0), (x + w * 0.6, bottom),
             (x - w * 0.6, bottom)],
            color,
        )
        pen.line([(x + w * 0.25 + lean, 0), (x + w * 0.3, bottom)], w * 0.2, _shade(color, 1.3))
    for _ in range(90):  # leaf litter
        x, y = rng.uniform(0, 1), rng.uniform(site.horizon, 1.0)
        r = rng.uniform(0.004, 0.02)
        pen.ellipse(x, y, r, r * 0.8, _jitter(rng, site.ground, 0.35))
    for _ in range(int(rng.integers(0, 3))):  # fallen logs
        x, y = rng.uniform(0, 1), rng.uniform(site.horizon + 0.1, 0.95)
        pen.line([(x - 0.2, y), (x + 0.2, y + rng.uniform(-0.1, 0.1))], 0.012,
                 _jitter(rng, (90, 75, 55), 0.2))


def _smooth_noise(rng: np.random.Generator, grid: tuple[int, int], width: int,
                  height: int) -> np.ndarray:
    """Noise in [-1, 1] on a fixed grid, upsampled: the same pattern at every resolution."""
    coarse = rng.uniform(-1, 1, grid).astype(np.float32)
    image = Image.fromarray(coarse, mode="F").resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(image, np.float32)


# --------------------------------------------------------------------------------------- animals


class _Pen:
    """ImageDraw in shares of the canvas, so one shape description works at any size."""

    def __init__(self, image: Image.Image) -> None:
        self.draw = ImageDraw.Draw(image)
        self.w, self.h = image.size

    def _xy(self, x: float, y: float) -> tuple[float, float]:
        return (x * self.w, y * self.h)

    def _px(self, width: float) -> int:
        return max(1, round(width * self.w))

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, fill: Color | None,
                outline: Color | None = None, width: float = 0.0) -> None:
        box = (*self._xy(cx - rx, cy - ry), *self._xy(cx + rx, cy + ry))
        self.draw.ellipse(box, fill=fill, outline=outline,
                          width=self._px(width) if outline else 0)

    def line(self, points: list[tuple[float, float]], width: float, fill: Color) -> None:
        self.draw.line([self._xy(*p) for p in points], fill=fill, width=self._px(width),
                       joint="curve")

    def polygon(self, points: list[tuple[float, float]], fill: Color) -> None:
        self.draw.polygon([self._xy(*p) for p in points], fill=fill)


def _jitter(rng: np.random.Generator, color: Color, amount: float = 0.12) -> Color:
    """A colour varied in brightness and, less, in hue: no two animals or sites alike."""
    scale = rng.uniform(1 - amount, 1 + amount) * rng.uniform(1 - amount / 3, 1 + amount / 3, 3)
    r, g, b = (int(v) for v in np.clip(np.asarray(color) * scale, 0, 255))
    return (r, g, b)


def _shade(color: Color, factor: float) -> Color:
    r, g, b = (int(min(255, v * factor)) for v in color)
    return (r, g, b)


def _spots(pen: _Pen, rng: np.random.Generator, n: int, box: tuple[float, float, float, float],
           radius: tuple[float, float], aspect: float, color: Color, ring: bool) -> None:
    """Dark marks inside an ellipse (cx, cy, rx, ry): solid spots or open rosettes."""
    cx, cy, rx, ry = box
    for _ in range(n):
        angle, dist = rng.uniform(0, 2 * math.pi), math.sqrt(rng.uniform(0, 0.8))
        x, y = cx + rx * dist * math.cos(angle), cy + ry * dist * math.sin(angle)
        r = rng.uniform(*radius)
        if ring:
            pen.ellipse(x, y, r, r * aspect, None, outline=color, width=r * 0.45)
        else:
            pen.ellipse(x, y, r, r * aspect * 0.8, color)


def _curve(start: tuple[float, float], control: tuple[float, float], end: tuple[float, float],
           n: int = 12) -> list[tuple[float, float]]:
    """Points on a quadratic Bezier: tails that bend."""
    t = np.linspace(0, 1, n)[:, None]
    a, b, c = np.array(start), np.array(control), np.array(end)
    pts = (1 - t) ** 2 * a + 2 * (1 - t) * t * b + t**2 * c
    return [(float(x), float(y)) for x, y in pts]


def _draw_antelope(pen: _Pen, rng: np.random.Generator) -> None:
    """Red-brown ellipse on thin legs, neck, small head with spike horns, white tail flag."""
    coat = _jitter(rng, (150, 82, 42))
    dark = _shade(coat, 0.5)
    for top, bottom in ((0.27, 0.25), (0.34, 0.35), (0.57, 0.6), (0.64, 0.66)):
        pen.line([(top, 0.5), (bottom, 0.97)], 0.026, dark)
    pen.ellipse(0.16, 0.38, 0.03, 0.06, (235, 230, 220))
    pen.ellipse(0.45, 0.45, 0.3, 0.17, coat)
    pen.line([(0.22, 0.32), (0.68, 0.31)], 0.03, dark)
    pen.polygon([(0.64, 0.38), (0.73, 0.18), (0.81, 0.2), (0.75, 0.48)], coat)
    pen.ellipse(0.82, 0.22, 0.085, 0.07, coat)
    pen.ellipse(0.9, 0.25, 0.03, 0.035, dark)
    pen.line([(0.79, 0.16), (0.75, 0.03)], 0.016, dark)
    pen.ellipse(0.74, 0.13, 0.025, 0.05, coat)


def _draw_bird(pen: _Pen, rng: np.random.Generator) -> None:
    """Small body with a dark wedge wing and tail, round head, orange beak and legs."""
    plumage = _jitter(rng, [(60, 70, 95), (115, 90, 55), (45, 45, 50)][int(rng.integers(3))])
    wing = _shade(plumage, 0.55)
    orange = _jitter(rng, (230, 140, 40), 0.08)
    pen.line([(0.45, 0.7), (0.42, 0.97)], 0.025, orange)
    pen.line([(0.53, 0.7), (0.56, 0.97)], 0.025, orange)
    pen.polygon([(0.3, 0.5), (0.02, 0.6), (0.05, 0.76), (0.32, 0.64)], wing)
    pen.ellipse(0.46, 0.56, 0.25, 0.17, plumage)
    pen.ellipse(0.72, 0.33, 0.11, 0.11, plumage)
    pen.polygon([(0.8, 0.29), (0.98, 0.35), (0.8, 0.4)], orange)
    if rng.random() < 0.35:  # wings raised
        pen.polygon([(0.35, 0.5), (0.6, 0.48), (0.2, 0.02)], wing)
    else:
        pen.polygon([(0.64, 0.46), (0.36, 0.44), (0.1, 0.72)], wing)
    pen.ellipse(0.75, 0.3, 0.025, 0.025, (240, 240, 240))


def _draw_civet(pen: _Pen, rng: np.random.Generator) -> None:
    """Long low buff body with black spots, pointed masked face, long ringed tail."""
    coat = _jitter(rng, (180, 165, 130))
    dark = _jitter(rng, (35, 30, 25), 0.2)
    tail = _curve((0.2, 0.45), (0.06, 0.4), (0.01, 0.8), 10)
    for i in range(len(tail) - 1):
        pen.line([tail[i], tail[i + 1]], 0.05, dark if i % 2 else coat)
    for x in (0.26, 0.31, 0.55, 0.6):
        pen.line([(x, 0.55), (x + 0.01, 0.95)], 0.03, dark)
    pen.ellipse(0.42, 0.48, 0.27, 0.19, coat)
    _spots(pen, rng, int(rng.integers(12, 20)), (0.42, 0.48, 0.25, 0.17), (0.012, 0.022), 2.4,
           dark, ring=False)
    pen.line([(0.2, 0.32), (0.64, 0.32)], 0.02, dark)
    pen.ellipse(0.7, 0.45, 0.07, 0.16, coat)
    pen.polygon([(0.68, 0.34), (0.92, 0.5), (0.68, 0.6)], coat)
    pen.ellipse(0.78, 0.45, 0.035, 0.07, dark)
    pen.ellipse(0.66, 0.3, 0.025, 0.07, coat)


def _draw_hog(pen: _Pen, rng: np.random.Generator) -> None:
    """Big rounded dark-grey body on short thick legs, pale flat snout, pointed ears."""
    coat = _jitter(rng, (62, 58, 58), 0.2)
    dark = _shade(coat, 0.6)
    snout = _jitter(rng, (150, 115, 110), 0.1)
    for x in (0.23, 0.32, 0.58, 0.67):
        pen.line([(x, 0.65), (x, 0.97)], 0.06, dark)
    pen.ellipse(0.45, 0.5, 0.36, 0.32, coat)
    pen.line(_curve((0.15, 0.3), (0.4, 0.08), (0.7, 0.3), 8), 0.03, dark)
    pen.ellipse(0.78, 0.56, 0.13, 0.18, coat)
    pen.polygon([(0.7, 0.42), (0.74, 0.22), (0.79, 0.42)], dark)
    pen.ellipse(0.93, 0.65, 0.05, 0.09, snout)
    pen.ellipse(0.94, 0.63, 0.012, 0.02, dark)
    pen.ellipse(0.94, 0.69, 0.012, 0.02, dark)
    pen.line([(0.86, 0.74), (0.9, 0.66)], 0.012, (235, 230, 215))


def _draw_leopard(pen: _Pen, rng: np.random.Generator) -> None:
    """Golden body with dark rosettes, round head, long tail curling up at a dark tip."""
    coat = _jitter(rng, (212, 165, 70))
    dark = _jitter(rng, (45, 32, 15), 0.2)
    tail = _curve((0.2, 0.42), (0.0, 0.55), (0.04, 0.9), 10)
    pen.line(tail, 0.035, coat)
    pen.line(tail[-3:], 0.037, dark)
    for x in (0.27, 0.33, 0.6, 0.66):
        pen.line([(x, 0.55), (x, 0.96)], 0.045, coat)
    pen.ellipse(0.46, 0.47, 0.3, 0.2, coat)
    _spots(pen, rng, int(rng.integers(14, 24)), (0.46, 0.47, 0.28, 0.18), (0.018, 0.028), 2.0,
           dark, ring=True)
    pen.ellipse(0.8, 0.36, 0.09, 0.18, coat)
    pen.ellipse(0.76, 0.2, 0.025, 0.05, coat)
    pen.ellipse(0.84, 0.2, 0.025, 0.05, coat)
    _spots(pen, rng, 6, (0.8, 0.36, 0.07, 0.14), (0.006, 0.01), 2.0, dark, ring=False)


def _draw_monkey(pen: _Pen, rng: np.random.Generator) -> None:
    """Upright body, bent limbs, round head with a pale face, long tail curving up."""
    fur = _jitter(rng, [(60, 48, 38), (105, 100, 92), (35, 32, 30)][int(rng.integers(3))])
    face = _jitter(rng, (190, 160, 130), 0.1)
    pen.line(_curve((0.42, 0.72), (-0.1, 0.95), (0.08, 0.2), 14), 0.035, fur)
    pen.line([(0.45, 0.68), (0.36, 0.84), (0.44, 0.98)], 0.05, fur)
    pen.line([(0.6, 0.68), (0.7, 0.84), (0.63, 0.98)], 0.05, fur)
    pen.ellipse(0.52, 0.55, 0.16, 0.22, fur)
    pen.line([(0.6, 0.42), (0.78, 0.58), (0.8, 0.76)], 0.045, fur)
    pen.ellipse(0.6, 0.24, 0.14, 0.14 * 0.9, fur)
    pen.ellipse(0.65, 0.26, 0.08, 0.08 * 0.9, face)
    pen.ellipse(0.63, 0.24, 0.015, 0.015, (20, 15, 10))
    pen.ellipse(0.69, 0.24, 0.015, 0.015, (20, 15, 10))


def _draw_rodent(pen: _Pen, rng: np.random.Generator) -> None:
    """A tiny brown blob with a pointed nose, round ear and thin pink tail."""
    fur = _jitter(rng, (125, 92, 58))
    pen.line(_curve((0.22, 0.75), (0.1, 0.95), (0.0, 0.8), 8), 0.02, _jitter(rng, (190, 150, 140)))
    pen.ellipse(0.45, 0.63, 0.28, 0.3, fur)
    pen.ellipse(0.72, 0.6, 0.14, 0.22, fur)
    pen.polygon([(0.78, 0.5), (0.97, 0.68), (0.78, 0.74)], fur)
    pen.ellipse(0.66, 0.36, 0.06, 0.11, _shade(fur, 1.25))
    pen.ellipse(0.78, 0.55, 0.02, 0.035, (15, 10, 10))
    pen.line([(0.35, 0.88), (0.35, 0.97)], 0.04, _shade(fur, 0.6))
    pen.line([(0.6, 0.88), (0.62, 0.97)], 0.04, _shade(fur, 0.6))


DRAWERS: dict[str, Callable[[_Pen, np.random.Generator], None]] = {
    "antelope_duiker": _draw_antelope,
    "bird": _draw_bird,
    "civet_genet": _draw_civet,
    "hog": _draw_hog,
    "leopard": _draw_leopard,
    "monkey_prosimian": _draw_monkey,
    "rodent": _draw_rodent,
}


def draw_animal(rng: np.random.Generator, label: str, width: int) -> Image.Image:
    """An RGBA animal `width` px wide in a random pose (flip, stretch, tilt)."""
    aspect = ASPECT[label] * rng.uniform(0.9, 1.1)
    canvas_w = int(np.clip(4 * width, 96, 512))  # drawn large, then shrunk: smooth edges
    canvas = Image.new("RGBA", (canvas_w, max(8, round(canvas_w / aspect))), (0, 0, 0, 0))
    DRAWERS[label](_Pen(canvas), rng)
    canvas = canvas.rotate(float(rng.uniform(-10, 10)), Image.Resampling.BICUBIC, expand=True)
    if rng.random() < 0.5:
        canvas = canvas.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    height = max(2, round(width * canvas.height / canvas.width))
    return canvas.resize((max(2, width), height), Image.Resampling.LANCZOS)


# ---------------------------------------------------------------------------------------- frames


def render_frame(
    rng: np.random.Generator, site: Site, label: str, width: int, height: int
) -> tuple[Image.Image, BBox | None]:
    """One camera-trap frame of `label` at `site`, and the animal's visible box (None if blank).

    The box is normalised x, y, w, h, clipped to the picture above the info bar.
    """
    frame = site_background(site, width, height)
    bar_h = max(9, round(BAR_SHARE * height))
    bbox = None
    if label != "blank":
        bbox = _place_animal(rng, frame, site, label, bar_h)
    if rng.random() < OCCLUDED:
        _draw_foreground(rng, frame, bbox)
    night = bool(rng.random() < min(0.95, NOCTURNAL[label] * site.night_factor))
    arr = _light(rng, np.asarray(frame, np.float32), site, night)
    image = Image.fromarray(arr)
    _draw_info_bar(rng, image, site, night, bar_h)
    return image, bbox


def _place_animal(rng: np.random.Generator, frame: Image.Image, site: Site, label: str,
                  bar_h: int) -> BBox:
    """Paste an animal on the ground (or a branch), sometimes cut by the border; its box."""
    width, height = frame.size
    animal = draw_animal(rng, label, round(width * rng.uniform(*WIDTH_SHARE[label])))
    aw, ah = animal.size
    picture_h = height - bar_h
    if label in ("monkey_prosimian", "bird") and rng.random() < 0.3:
        feet = rng.uniform(0.25, site.horizon) * height  # perched in the vegetation
    else:
        feet = rng.uniform(site.horizon * height + 0.3 * ah, picture_h + 0.15 * ah)
    if rng.random() < CUT_BY_BORDER:
        outside = rng.uniform(0.2, 0.55) * aw
        x = -outside if rng.random() < 0.5 else width - aw + outside
    else:
        x = rng.uniform(0, max(1.0, width - aw))
    x, y = round(x), round(min(feet, picture_h + 0.4 * ah) - ah)
    frame.paste(animal, (x, y), animal)
    alpha = animal.getchannel("A").point(lambda v: 255 if v > 96 else 0)
    left, top, right, bottom = alpha.getbbox() or (0, 0, aw, ah)
    x0, y0 = max(0, x + left), max(0, y + top)
    x1, y1 = min(width, x + right), min(picture_h, y + bottom)
    return (x0 / width, y0 / height, max(0, x1 - x0) / width, max(0, y1 - y0) / height)


def _draw_foreground(rng: np.random.Generator, frame: Image.Image, bbox: BBox | None) -> None:
    """Grass blades or a leafy branch in front of the scene, often across the animal."""
    pen = _Pen(frame)
    if bbox is not None and rng.random() < 0.7:
        cx, cy = bbox[0] + rng.uniform(0, bbox[2]), bbox[1] + rng.uniform(0.3, 1.0) * bbox[3]
    else:
        cx, cy = rng.uniform(0, 1), rng.uniform(0.5, 1.0)
    green = _jitter(rng, (70, 105, 50), 0.3)
    for _ in range(int(rng.integers(3, 9))):
        x = cx + rng.normal(0, 0.02)
        pen.line([(x, 1.0), (x + rng.normal(0, 0.02), cy - rng.uniform(0, 0.15))],
                 rng.uniform(0.002, 0.006), _jitter(rng, green, 0.2))
    if rng.random() < 0.4:
        for _ in range(int(rng.integers(2, 6))):
            r = rng.uniform(0.01, 0.025)
            pen.ellipse(cx + rng.normal(0, 0.03), cy + rng.normal(0, 0.04), r, r * 1.2,
                        _jitter(rng, green, 0.2))


def _light(rng: np.random.Generator, arr: np.ndarray, site: Site, night: bool) -> np.ndarray:
    """Site light and daily variation; at night an IR flash: gray, bright centre, noisy."""
    height, width = arr.shape[:2]
    field = 1 + 0.2 * _smooth_noise(rng, (4, 6), width, height)[..., None]
    if not night:
        gain = site.gain * rng.uniform(0.8, 1.2)
        arr = arr * field * gain * np.asarray(site.cast, np.float32)
        arr += rng.normal(0, rng.uniform(1.5, 4.0), arr.shape).astype(np.float32)
        return np.clip(arr, 0, 255).astype(np.uint8)
    # Near infrared: foliage reflects strongly, the flash falls off towards the edges.
    lum = arr @ np.array([0.3, 0.55, 0.15], np.float32)
    ys = np.linspace(-1, 1, height, dtype=np.float32)[:, None]
    xs = np.linspace(-1, 1, width, dtype=np.float32)[None, :]
    flash = np.exp(-(xs**2 / 1.2 + (ys - 0.1) ** 2 / 0.9)) * rng.uniform(1.3, 2.0)
    lum = 255 * np.clip(lum / 255 * flash * field[..., 0], 0, 1) ** rng.uniform(0.6, 0.9)
    lum += rng.normal(0, rng.uniform(3.0, 7.0), lum.shape).astype(np.float32)
    gray = np.clip(lum, 0, 255).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)


def _draw_info_bar(rng: np.random.Generator, image: Image.Image, site: Site, night: bool,
                   bar_h: int) -> None:
    """The camera's burned-in strip: camera name, temperature, date and time."""
    width, height = image.size
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, height - bar_h, width, height), fill=(12, 12, 12))
    hour = int(rng.choice([*range(19, 24), *range(0, 5)])) if night else int(rng.integers(6, 18))
    stamp = dt.datetime.combine(
        site.start + dt.timedelta(days=int(rng.integers(0, 60))),
        dt.time(hour, int(rng.integers(60)), int(rng.integers(60))),
    )
    temp = round(site.temperature + (-4 if night else 3) + rng.normal(0, 1.5))
    font = ImageFont.load_default(size=max(6, round(bar_h * 0.75)))
    y = height - bar_h / 2
    draw.text((bar_h * 0.4, y), f"{site.camera}  {temp}°C", fill=(235, 235, 235), font=font,
              anchor="lm")
    draw.text((width - bar_h * 0.4, y), stamp.strftime("%m-%d-%Y  %H:%M:%S"),
              fill=(235, 235, 235), font=font, anchor="rm")


# ------------------------------------------------------------------------------------ detections


def simulate_detections(rng: np.random.Generator, bbox: BBox | None,
                        miss_rate: float = 0.1) -> list[mdjson.Detection]:
    """What a real detector would say: jittered boxes, misses, false boxes, noisy confidence."""
    dets = []
    small = bbox is not None and bbox[2] * bbox[3] < 0.002
    if bbox is not None and rng.random() >= miss_rate * (2 if small else 1):
        x, y, w, h = bbox
        box = (x + rng.normal(0, 0.04) * w, y + rng.normal(0, 0.04) * h,
               w * rng.uniform(0.92, 1.08), h * rng.uniform(0.92, 1.08))
        conf = rng.uniform(0.05, 0.3) if rng.random() < 0.12 else rng.beta(5, 1.5) * 0.68 + 0.3
        dets.append(mdjson.Detection("1", float(conf), _clip_box(box)))
    n_false = rng.poisson(0.7 if bbox is None else 0.25)
    for _ in range(int(n_false)):
        w, h = rng.uniform(0.03, 0.2), rng.uniform(0.04, 0.25)
        box = (rng.uniform(0, 1 - w), rng.uniform(0.1, 0.95 - h), w, h)
        conf = rng.uniform(0.3, 0.55) if rng.random() < 0.05 else rng.uniform(0.02, 0.3)
        dets.append(mdjson.Detection("1", float(conf), _clip_box(box)))
    return sorted(dets, key=lambda d: -d.conf)


def _clip_box(box: tuple[float, float, float, float]) -> BBox:
    x0, y0 = min(max(box[0], 0.0), 1.0), min(max(box[1], 0.0), 1.0)
    x1, y1 = min(max(box[0] + box[2], 0.0), 1.0), min(max(box[1] + box[3], 0.0), 1.0)
    return (x0, y0, max(0.0, x1 - x0), max(0.0, y1 - y0))


# ------------------------------------------------------------------------------------ the tables


def class_counts(n: int, rng: np.random.Generator | None = None) -> dict[str, int]:
    """Images per class for `n` images: the shares rounded, every class present, hog rarest."""
    share = np.array([CLASS_SHARE[c] for c in CLASSES])
    share = share / share.sum()
    counts = np.floor(share * n).astype(int)
    order = np.argsort(-(share * n - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    hog = CLASSES.index("hog")
    for i in range(len(CLASSES)):  # every class at least once, taken from the largest
        while counts[i] < 1 and counts.max() > 1:
            counts[np.argmax(counts)] -= 1
            counts[i] += 1
    others = np.delete(counts, hog)
    while counts[hog] > 1 and counts[hog] >= others.min():  # hog stays strictly rarest
        counts[hog] -= 1
        counts[int(np.argmax(counts))] += 1
        others = np.delete(counts, hog)
    return {c: int(k) for c, k in zip(CLASSES, counts, strict=True)}


def assign_sites(rng: np.random.Generator, sites: list[Site], n: int) -> list[tuple[str, str]]:
    """(site, label) per image: fixed class totals, every site used, each site's own mix."""
    if n < len(sites):
        raise ValueError(f"{n} images cannot cover {len(sites)} sites; lower the number of sites")
    remaining = np.array([class_counts(n)[c] for c in CLASSES], dtype=float)
    prior = np.array([s.prior for s in sites])
    size = rng.lognormal(0.0, 0.6, len(sites))
    rows = []
    for i, site in enumerate(sites):  # one image per site first, so no site is empty
        p = prior[i] * remaining
        c = int(rng.choice(len(CLASSES), p=p / p.sum()))
        remaining[c] -= 1
        rows.append((site.name, CLASSES[c]))
    for c, left in enumerate(remaining.astype(int)):
        p = size * prior[:, c]
        for s in rng.choice(len(sites), size=left, p=p / p.sum()):
            rows.append((sites[int(s)].name, CLASSES[c]))
    order = rng.permutation(len(rows))
    return [rows[i] for i in order]


def make_sites(seed: int, n_train_sites: int, n_test_sites: int) -> tuple[list[Site], list[Site]]:
    """Train and test sites, disjoint by construction, with scattered DrivenData-style names."""
    n = n_train_sites + n_test_sites
    numbers = np.random.default_rng([seed, 7]).choice(np.arange(1, 10 * n), n, replace=False)
    sites = [
        make_site(np.random.default_rng([seed, 8, i]), f"S{int(num):04d}")
        for i, num in enumerate(numbers)
    ]
    return sites[:n_train_sites], sites[n_train_sites:]


def generate_demo_data(
    out: str | Path,
    seed: int = 0,
    n_train: int = DemoDataConfig.n_train,
    n_test: int = DemoDataConfig.n_test,
    width: int = DemoDataConfig.width,
    height: int = DemoDataConfig.height,
    *,
    n_train_sites: int = DemoDataConfig.n_train_sites,
    n_test_sites: int = DemoDataConfig.n_test_sites,
    jpeg_quality: int = DemoDataConfig.jpeg_quality,
    miss_rate: float = DemoDataConfig.miss_rate,
) -> Path:
    """Write the whole demo folder (tables, JPEGs, detections.json, demo.json); return it."""
    cfg = DemoDataConfig(
        out=str(out), seed=seed, n_train=n_train, n_test=n_test, width=width, height=height,
        n_train_sites=n_train_sites, n_test_sites=n_test_sites, jpeg_quality=jpeg_quality,
        miss_rate=miss_rate,
    )
    return _generate(cfg)


def _generate(cfg: DemoDataConfig) -> Path:
    out = Path(cfg.out)
    if cfg.width < 32 or cfg.height < 18:
        raise ValueError(f"frames of {cfg.width}x{cfg.height} px are too small (at least 32x18)")
    if (out / TRAIN_FEATURES).exists() and not (out / META_FILE).exists():
        # Regenerating removes stale images, which must never touch a real data folder.
        raise ValueError(f"{out} holds data that demo-data did not make; choose another --out")
    started = time.perf_counter()
    train_sites, test_sites = make_sites(cfg.seed, cfg.n_train_sites, cfg.n_test_sites)
    sites = {s.name: s for s in [*train_sites, *test_sites]}
    plan = [
        ("train", site, label)
        for site, label in assign_sites(np.random.default_rng([cfg.seed, 1]), train_sites,
                                        cfg.n_train)
    ] + [
        ("test", site, label)
        for site, label in assign_sites(np.random.default_rng([cfg.seed, 2]), test_sites,
                                        cfg.n_test)
    ]
    rows, detections = [], mdjson.DetectionFile(
        categories={"1": "animal"}, info={"detector": DETECTOR_NAME, "seed": cfg.seed}
    )
    for index, (split, site_name, label) in enumerate(plan):
        image_id = f"ZJ{index:06d}"
        filepath = f"{split}_features/{image_id}.jpg"
        rng = np.random.default_rng([cfg.seed, 3, index])
        image, bbox = render_frame(rng, sites[site_name], label, cfg.width, cfg.height)
        with atomic_path(out / filepath) as tmp:
            image.save(tmp, format="JPEG", quality=cfg.jpeg_quality)
        det_rng = np.random.default_rng([cfg.seed, 4, index])
        detections.images[filepath] = simulate_detections(det_rng, bbox, cfg.miss_rate)
        rows.append((image_id, filepath, site_name, label, split, _is_gray(image), bbox))
    truth = _truth_table(rows)
    _write_tables(out, truth)
    mdjson.write(out / DETECTIONS_FILE, detections)
    _remove_stale_images(out, set(truth[FILEPATH_COL]))
    meta = _metadata(cfg, truth, train_sites, test_sites, time.perf_counter() - started)
    write_json(out / META_FILE, meta)
    return out


def _is_gray(image: Image.Image) -> bool:
    arr = np.asarray(image)
    return bool((arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all())


def _truth_table(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    frame = pd.DataFrame(
        [r[:6] for r in rows], columns=[ID_COL, FILEPATH_COL, SITE_COL, LABEL_COL, "split", "night"]
    )
    boxes = np.array([r[6] if r[6] is not None else (np.nan,) * 4 for r in rows], dtype=float)
    for i, name in enumerate(("bbox_x", "bbox_y", "bbox_w", "bbox_h")):
        frame[name] = boxes[:, i]
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


def _metadata(cfg: DemoDataConfig, truth: pd.DataFrame, train_sites: list[Site],
              test_sites: list[Site], seconds: float) -> dict[str, Any]:
    def per_class(split: str) -> dict[str, int]:
        labels = truth.loc[truth["split"] == split, LABEL_COL]
        return {c: int((labels == c).sum()) for c in CLASSES}

    def night(split: str) -> int:
        return int(truth.loc[truth["split"] == split, "night"].sum())

    return {
        "generator": f"kaggle_style.data.demo v{GENERATOR_VERSION}",
        "git_commit": git_commit(),
        "config": config_dict(cfg),
        "seconds": round(seconds, 2),
        "train": {"images": int((truth["split"] == "train").sum()), "classes": per_class("train"),
                  "night": night("train"), "sites": [s.name for s in train_sites]},
        "test": {"images": int((truth["split"] == "test").sum()), "classes": per_class("test"),
                 "night": night("test"), "sites": [s.name for s in test_sites]},
        "site_class_priors": {
            s.name: dict(zip(CLASSES, (round(p, 4) for p in s.prior), strict=True))
            for s in [*train_sites, *test_sites]
        },
        "files": {
            "detections": DETECTIONS_FILE,
            "truth": f"{TRUTH_FILE} (labels and true boxes of every image, test included; "
                     "for scoring demo submissions, not part of the DrivenData layout)",
        },
    }


def summary(meta: dict[str, Any]) -> str:
    """One paragraph a user reads after generation."""
    cfg = meta["config"]
    train, test = meta["train"], meta["test"]
    classes = ", ".join(f"{c} {train['classes'][c]}/{test['classes'][c]}" for c in CLASSES)
    return (
        f"demo data in {cfg['out']} (seed {cfg['seed']}, {cfg['width']}x{cfg['height']} px, "
        f"{meta['seconds']:.1f} s): {train['images']} train images from {len(train['sites'])} "
        f"sites, {test['images']} test images from {len(test['sites'])} unseen sites; "
        f"night IR frames {train['night']}/{test['night']}; per class (train/test): {classes}; "
        f"simulated detections in {DETECTIONS_FILE}, true labels and boxes in {TRUTH_FILE}."
    )


# ----------------------------------------------------------------------------------------- stage


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--out", help="folder to write (default data/demo)")
    parser.add_argument("--seed", type=int, help="the same seed gives byte-identical files")
    parser.add_argument("--n-train", type=int, help="training images (default 480)")
    parser.add_argument("--n-test", type=int, help="test images (default 160)")
    parser.add_argument("--width", type=int, help="frame width in px (default 320)")
    parser.add_argument("--height", type=int, help="frame height in px (default 180)")


def run(args: argparse.Namespace) -> int:
    cfg = resolve_config(
        DemoDataConfig, args.config, args.overrides,
        out=args.out, seed=args.seed, n_train=args.n_train, n_test=args.n_test,
        width=args.width, height=args.height,
    )
    out = _generate(cfg)
    print(summary(json.loads((out / META_FILE).read_text())))
    return 0
