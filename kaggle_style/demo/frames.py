"""One camera-trap frame: the site's scene, an animal placed in it, light (day or IR), info bar.

A frame is either on its own (`shot=None`: today's frames, every draw from the frame's own
generator, byte-identical to the generator before bursts and clocks) or one shot of a visit:
then the animal, its place and the foreground come from the visit's generator, so every frame
of a burst shows the same animal, a step further along, under the visit's clock and light.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from PIL import Image

from kaggle_style.demo.animals import WIDTH_SHARE, draw_animal
from kaggle_style.demo.infobar import LEGACY, draw_info_bar, draw_legacy_bar
from kaggle_style.demo.scenes import Pen, Site, jitter, site_background, smooth_noise

BBox = tuple[float, float, float, float]  # normalised x, y, w, h

BAR_SHARE = 0.055  # info-bar height as a share of the frame height
CAMERA_BAR_SHARE = 0.075  # the same for the real layouts (Bushnell strip and overlay)
CUT_BY_BORDER = 0.15  # share of animals that stand partly outside the frame
OCCLUDED = 0.3  # share of frames with foreground vegetation drawn over the scene
KEEP_INSIDE = 0.3  # a walking animal keeps at least this share of its width in the frame
# Chance of a night (IR) frame before the site's factor, for frames without a clock of their
# own (shot=None): civets and rodents are nocturnal.
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


@dataclass(frozen=True)
class Shot:
    """One frame of a visit: what it shares with the visit's other frames, and its own time."""

    visit_seed: tuple[int, ...]  # seeds the visit's animal, pose, place and foreground
    step: float  # the animal's walk since the visit's first frame, in shares of the width
    night: bool  # the IR flash fired (the whole visit shares the light)
    when: dt.datetime  # the camera's clock at this frame


def bar_height(height: int, layout: str = LEGACY) -> int:
    """The info bar's rows: the first generator's, or the taller strip of the real layouts,
    whose digits must stay legible at the demo's 180 px (the real strips' text is 9-11 px)."""
    if layout == LEGACY:
        return max(9, round(BAR_SHARE * height))
    return max(9, round(CAMERA_BAR_SHARE * height))


def render_frame(
    rng: np.random.Generator,
    site: Site,
    label: str,
    width: int,
    height: int,
    shot: Shot | None = None,
) -> tuple[Image.Image, BBox | None]:
    """One camera-trap frame of `label` at `site`, and the animal's visible box (None if blank).

    The box is normalised x, y, w, h, clipped to the picture above the info bar.
    """
    frame = site_background(site, width, height)
    bar_h = bar_height(height, LEGACY if shot is None else site.layout)
    scene = rng if shot is None else np.random.default_rng(list(shot.visit_seed))
    bbox = None
    if label != "blank":
        step = 0.0 if shot is None else shot.step
        bbox = _place_animal(scene, frame, site, label, bar_h, step)
    if scene.random() < OCCLUDED:
        _draw_foreground(scene, frame, bbox)
    if shot is None:
        night = bool(rng.random() < min(0.95, NOCTURNAL[label] * site.night_factor))
    else:
        night = shot.night
    arr = _light(rng, np.asarray(frame, np.float32), site, night)
    image = Image.fromarray(arr)
    if shot is None:
        draw_legacy_bar(rng, image, site, night, bar_h)
    else:
        draw_info_bar(rng, image, site, night, bar_h, shot.when)
    return image, bbox


def _place_animal(
    rng: np.random.Generator,
    frame: Image.Image,
    site: Site,
    label: str,
    bar_h: int,
    step: float = 0.0,
) -> BBox:
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
    if step:  # a burst's later frame: the animal has walked on, but is still in view
        x = min(max(x + step * width, -(1 - KEEP_INSIDE) * aw), width - KEEP_INSIDE * aw)
    x, y = round(x), round(min(feet, picture_h + 0.4 * ah) - ah)
    frame.paste(animal, (x, y), animal)
    alpha = animal.getchannel("A").point(lambda v: 255 if v > 96 else 0)
    left, top, right, bottom = alpha.getbbox() or (0, 0, aw, ah)
    x0, y0 = max(0, x + left), max(0, y + top)
    x1, y1 = min(width, x + right), min(picture_h, y + bottom)
    return (x0 / width, y0 / height, max(0, x1 - x0) / width, max(0, y1 - y0) / height)


def _draw_foreground(rng: np.random.Generator, frame: Image.Image, bbox: BBox | None) -> None:
    """Grass blades or a leafy branch in front of the scene, often across the animal."""
    pen = Pen(frame)
    if bbox is not None and rng.random() < 0.7:
        cx, cy = bbox[0] + rng.uniform(0, bbox[2]), bbox[1] + rng.uniform(0.3, 1.0) * bbox[3]
    else:
        cx, cy = rng.uniform(0, 1), rng.uniform(0.5, 1.0)
    green = jitter(rng, (70, 105, 50), 0.3)
    for _ in range(int(rng.integers(3, 9))):
        x = cx + rng.normal(0, 0.02)
        pen.line(
            [(x, 1.0), (x + rng.normal(0, 0.02), cy - rng.uniform(0, 0.15))],
            rng.uniform(0.002, 0.006),
            jitter(rng, green, 0.2),
        )
    if rng.random() < 0.4:
        for _ in range(int(rng.integers(2, 6))):
            r = rng.uniform(0.01, 0.025)
            pen.ellipse(
                cx + rng.normal(0, 0.03),
                cy + rng.normal(0, 0.04),
                r,
                r * 1.2,
                jitter(rng, green, 0.2),
            )


def _light(rng: np.random.Generator, arr: np.ndarray, site: Site, night: bool) -> np.ndarray:
    """Site light and daily variation; at night an IR flash: gray, bright centre, noisy."""
    height, width = arr.shape[:2]
    field = 1 + 0.2 * smooth_noise(rng, (4, 6), width, height)[..., None]
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
