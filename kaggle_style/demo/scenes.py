"""A camera site: its scene (background, vegetation, light) and its class mix, at any size.

Everything about a site follows from its own seed, so its frames look alike at every resolution
and in every frame of a burst.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from kaggle_style.task import CONSERVISION_CLASSES as CLASSES

Color = tuple[int, int, int]

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
    layout: str = "legacy"  # the camera's info bar (kaggle_style.demo.infobar.LAYOUTS)


def make_site(rng: np.random.Generator, name: str) -> Site:
    """A camera site with its own scene, light and class mix (drawn from `rng`)."""
    share = np.array([CLASS_SHARE[c] for c in CLASSES])
    prior = rng.dirichlet(SITE_PRIOR_CONCENTRATION * share / share.sum())
    n_trunks = int(rng.integers(2, 7))
    trunks = tuple(
        (
            float(rng.uniform(0.0, 1.0)),
            float(rng.uniform(0.015, 0.08)),
            jitter(rng, (95, 80, 62), 0.3),
        )
        for _ in range(n_trunks)
    )
    return Site(
        name=name,
        camera=f"TAI-{int(rng.integers(1, 100)):02d}{'ABCDEFGH'[int(rng.integers(8))]}",
        seed=int(rng.integers(2**31)),
        canopy=jitter(rng, (40, 70, 35), 0.35),
        understory=jitter(rng, (85, 110, 65), 0.3),
        ground=jitter(rng, (105, 85, 60), 0.3),
        horizon=float(rng.uniform(0.45, 0.7)),
        trunks=trunks,
        gain=float(rng.uniform(0.75, 1.25)),
        cast=_three(rng.uniform(0.88, 1.12, 3)),
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
    arr *= 1 + 0.35 * smooth_noise(rng, (12, 20), width, height)[..., None]
    arr *= 1 + 0.15 * smooth_noise(rng, (45, 80), width, height)[..., None]
    image = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    pen = Pen(image)
    _draw_vegetation(pen, rng, site)
    return image


def _draw_vegetation(pen: Pen, rng: np.random.Generator, site: Site) -> None:
    """Sky gaps, leaves, trunks and litter: the fixed details that identify a site."""
    for _ in range(int(rng.integers(2, 8))):  # sky seen through the canopy
        x, y = rng.uniform(0, 1), rng.uniform(0, 0.25 * site.horizon)
        r = rng.uniform(0.01, 0.05)
        pen.ellipse(x, y, r, r * 1.78, jitter(rng, (200, 215, 220), 0.1))
    for _ in range(70):  # far foliage
        x, y = rng.uniform(0, 1), rng.uniform(0, site.horizon)
        r = rng.uniform(0.01, 0.04)
        pen.ellipse(x, y, r, r * rng.uniform(0.8, 2.0), jitter(rng, site.understory, 0.35))
    for x, w, color in site.trunks:
        bottom = site.horizon + rng.uniform(0.0, 0.15)
        lean = rng.uniform(-0.03, 0.03)
        pen.polygon(
            [
                (x - w / 2 + lean, 0),
                (x + w / 2 + lean, 0),
                (x + w * 0.6, bottom),
                (x - w * 0.6, bottom),
            ],
            color,
        )
        pen.line([(x + w * 0.25 + lean, 0), (x + w * 0.3, bottom)], w * 0.2, shade(color, 1.3))
    for _ in range(90):  # leaf litter
        x, y = rng.uniform(0, 1), rng.uniform(site.horizon, 1.0)
        r = rng.uniform(0.004, 0.02)
        pen.ellipse(x, y, r, r * 0.8, jitter(rng, site.ground, 0.35))
    for _ in range(int(rng.integers(0, 3))):  # fallen logs
        x, y = rng.uniform(0, 1), rng.uniform(site.horizon + 0.1, 0.95)
        pen.line(
            [(x - 0.2, y), (x + 0.2, y + rng.uniform(-0.1, 0.1))],
            0.012,
            jitter(rng, (90, 75, 55), 0.2),
        )


def smooth_noise(
    rng: np.random.Generator, grid: tuple[int, int], width: int, height: int
) -> np.ndarray:
    """Noise in [-1, 1] on a fixed grid, upsampled: the same pattern at every resolution."""
    coarse = rng.uniform(-1, 1, grid).astype(np.float32)
    image = Image.fromarray(coarse, mode="F").resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(image, np.float32)


class Pen:
    """ImageDraw in shares of the canvas, so one shape description works at any size."""

    def __init__(self, image: Image.Image) -> None:
        self.draw = ImageDraw.Draw(image)
        self.w, self.h = image.size

    def _xy(self, x: float, y: float) -> tuple[float, float]:
        return (x * self.w, y * self.h)

    def _px(self, width: float) -> int:
        return max(1, round(width * self.w))

    def ellipse(
        self,
        cx: float,
        cy: float,
        rx: float,
        ry: float,
        fill: Color | None,
        outline: Color | None = None,
        width: float = 0.0,
    ) -> None:
        box = (*self._xy(cx - rx, cy - ry), *self._xy(cx + rx, cy + ry))
        self.draw.ellipse(box, fill=fill, outline=outline, width=self._px(width) if outline else 0)

    def line(self, points: list[tuple[float, float]], width: float, fill: Color) -> None:
        self.draw.line(
            [self._xy(*p) for p in points], fill=fill, width=self._px(width), joint="curve"
        )

    def polygon(self, points: list[tuple[float, float]], fill: Color) -> None:
        self.draw.polygon([self._xy(*p) for p in points], fill=fill)


def _three(values: np.ndarray) -> tuple[float, float, float]:
    a, b, c = (float(v) for v in values)
    return a, b, c


def jitter(rng: np.random.Generator, color: Color, amount: float = 0.12) -> Color:
    """A colour varied in brightness and, less, in hue: no two animals or sites alike."""
    scale = rng.uniform(1 - amount, 1 + amount) * rng.uniform(1 - amount / 3, 1 + amount / 3, 3)
    r, g, b = (int(v) for v in np.clip(np.asarray(color) * scale, 0, 255))
    return (r, g, b)


def shade(color: Color, factor: float) -> Color:
    r, g, b = (int(min(255, v * factor)) for v in color)
    return (r, g, b)
