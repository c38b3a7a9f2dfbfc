"""The camera's burned-in text, in the layouts of the real Conser-vision (Taï) frames.

Most real frames are Bushnell's: a white strip at the bottom, an orange logo at its left end,
`MM-DD-YYYY  HH:MM:SS` in black at its right. Some cameras print `Bushnell` and
`YYYY-MM-DD HH:MM:SS` in light text over the picture; some frames carry nothing (cropped, or
another model). "legacy" is the generator's first bar (dark strip, camera name, temperature),
kept so that a generator with clocks switched off writes byte-identical frames.
"""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from kaggle_style.demo.scenes import Site
from kaggle_style.meta.infobar import BUSHNELL_BAR, BUSHNELL_OVERLAY

LEGACY = "legacy"
NO_BAR = "none"
# Camera layouts of the sites when clocks are on, with their shares (most real frames are
# Bushnell strips; a few print over the picture or carry nothing).
LAYOUT_SHARE: dict[str, float] = {BUSHNELL_BAR: 0.8, BUSHNELL_OVERLAY: 0.1, NO_BAR: 0.1}
LAYOUTS = (LEGACY, *LAYOUT_SHARE)
LOGO_SHARE = 2.1  # Bushnell's logo box: this many strip heights tall and wide
PAPER = (250, 250, 250)
INK = (20, 20, 20)
ORANGE = (232, 108, 36)
TEXT = (235, 235, 235)


@functools.cache
def camera_font(size: int) -> ImageFont.FreeTypeFont:
    """DejaVu Sans, which matplotlib ships (so it is there wherever the project installs): its
    digits stay distinct at 8-12 px, where Pillow's default font turns 7 into / and 0 into U."""
    return ImageFont.truetype(Path(matplotlib.get_data_path()) / "fonts/ttf/DejaVuSans.ttf", size)


def draw_layout(rng: np.random.Generator) -> str:
    """A site's camera layout, by LAYOUT_SHARE."""
    names = list(LAYOUT_SHARE)
    share = np.array([LAYOUT_SHARE[n] for n in names])
    return names[int(rng.choice(len(names), p=share / share.sum()))]


def draw_legacy_bar(
    rng: np.random.Generator, image: Image.Image, site: Site, night: bool, bar_h: int
) -> None:
    """The first generator's strip: camera name, temperature, a random time fitting the light."""
    hour = int(rng.choice([*range(19, 24), *range(0, 5)])) if night else int(rng.integers(6, 18))
    stamp = dt.datetime.combine(
        site.start + dt.timedelta(days=int(rng.integers(0, 60))),
        dt.time(hour, int(rng.integers(60)), int(rng.integers(60))),
    )
    _dark_strip(rng, image, site, night, bar_h, stamp)


def draw_info_bar(
    rng: np.random.Generator,
    image: Image.Image,
    site: Site,
    night: bool,
    bar_h: int,
    when: dt.datetime,
) -> None:
    """The site's camera text showing `when`."""
    if site.layout == LEGACY:
        _dark_strip(rng, image, site, night, bar_h, when)
    elif site.layout == BUSHNELL_BAR:
        _bushnell_strip(image, bar_h, when)
    elif site.layout == BUSHNELL_OVERLAY:
        _bushnell_overlay(image, bar_h, when)
    elif site.layout != NO_BAR:
        raise ValueError(f"unknown info-bar layout {site.layout!r}; one of {LAYOUTS}")


def _dark_strip(
    rng: np.random.Generator,
    image: Image.Image,
    site: Site,
    night: bool,
    bar_h: int,
    stamp: dt.datetime,
) -> None:
    width, height = image.size
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, height - bar_h, width, height), fill=(12, 12, 12))
    temp = round(site.temperature + (-4 if night else 3) + rng.normal(0, 1.5))
    font = ImageFont.load_default(size=max(6, round(bar_h * 0.75)))
    y = height - bar_h / 2
    draw.text((bar_h * 0.4, y), f"{site.camera}  {temp}°C", fill=TEXT, font=font, anchor="lm")
    draw.text(
        (width - bar_h * 0.4, y),
        stamp.strftime("%m-%d-%Y  %H:%M:%S"),
        fill=TEXT,
        font=font,
        anchor="rm",
    )


def _spaced(
    draw: ImageDraw.ImageDraw,
    right: float,
    y: float,
    text: str,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    fill: tuple[int, int, int],
    spacing: float,
) -> None:
    """Right-aligned text with Bushnell's wide letter spacing, drawn from its right end."""
    x = right
    for char in reversed(text):
        draw.text((x, y), char, fill=fill, font=font, anchor="rm")
        x -= draw.textlength(char, font=font) + (spacing if char != " " else 0)


def _bushnell_strip(image: Image.Image, bar_h: int, when: dt.datetime) -> None:
    """White strip, orange logo box standing above its left end, black date and time."""
    width, height = image.size
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, height - bar_h, width, height), fill=PAPER)
    logo = round(LOGO_SHARE * bar_h)
    draw.rectangle((0, height - logo, logo, height), fill=ORANGE)
    r = logo * 0.16
    draw.ellipse(
        (logo / 2 - r, height - logo * 0.7 - r, logo / 2 + r, height - logo * 0.7 + r), fill=PAPER
    )
    draw.rectangle(
        (logo * 0.12, height - logo * 0.32, logo * 0.88, height - logo * 0.18), fill=PAPER
    )
    font = camera_font(max(7, round(bar_h * 0.85)))
    _spaced(
        draw,
        width - bar_h * 0.4,
        height - bar_h / 2,
        when.strftime("%m-%d-%Y  %H:%M:%S"),
        font,
        INK,
        bar_h * 0.12,
    )


def _bushnell_overlay(image: Image.Image, bar_h: int, when: dt.datetime) -> None:
    """Light text over the picture's bottom: `Bushnell` left, `YYYY-MM-DD HH:MM:SS` right."""
    width, height = image.size
    draw = ImageDraw.Draw(image)
    font = camera_font(max(7, round(bar_h * 0.85)))
    y = height - bar_h * 0.7
    for dx, fill in ((1, (10, 10, 10)), (0, TEXT)):  # a dark shadow keeps it legible
        draw.text((bar_h * 0.6 + dx, y + dx), "Bushnell", fill=fill, font=font, anchor="lm")
        _spaced(
            draw,
            width - bar_h * 0.6 + dx,
            y + dx,
            when.strftime("%Y-%m-%d  %H:%M:%S"),
            font,
            fill,
            bar_h * 0.08,
        )
