"""Where a frame's clock is and how its text parses: pixel work and parsing, no OCR.

The real Conser-vision (Taï) frames show three cases. Most are Bushnell frames with a white strip
at the bottom, an orange logo at its left and `MM-DD-YYYY HH:MM:SS` at its right; some cameras
print light text over the picture (`Bushnell  YYYY-MM-DD HH:MM:SS` at the bottom); some frames
carry nothing (cropped, or another model). A strip is found from its pixels and only its text
is read; otherwise the bottom and top bands are tried. A time is kept only where a whole valid
date and time parse: a partial or impossible reading is no reading.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

# Tesseract reads these digits best at 30-50 px tall; 40 px was the most accurate on the real
# Taï frames and their degraded copies (docs/concepts/camera-clock.md).
TEXT_HEIGHT = 40
BAND_HEIGHT = 100  # a band is taller than its text: scaled so that the text is about 30-40 px
STRIP_WHITE = 225  # grey level of the strip's paper
# Shares of a row that is paper (the logo's end left out): every strip row holds at least
# STRIP_ROW (text rows: real 0.86, demo 0.71), the strip as a whole STRIP_FILL, its clean top
# and bottom rows STRIP_EDGE. The brightest real IR picture rows above a strip hold 0.69.
STRIP_ROW = 0.6
STRIP_FILL = 0.8
STRIP_EDGE = 0.9
STRIP_MIN_ROWS = 6
STRIP_MAX_SHARE = 0.12  # a "strip" taller than this is an over-exposed picture, not a bar
STRIP_TEXT_FROM = 0.35  # the strip's text is read from this share of the width to the right
BAND_SHARE = 0.10  # height of the bottom and top bands tried when there is no strip
# Below this frame height a band's text is a few px tall: four Tesseract calls a frame read 2 of
# 120 clocks of 128x72 demo frames and none of camtrapR's 100x75 thumbnails, so none are made.
BAND_MIN_FRAME = 120
# Channel spread (median |R-G| + |G-B| over the picture): IR frames are grey (0 in the real
# ones), colour frames far above (19-49 in the real ones).
IR_SPREAD = 4.0
COLOUR_SPREAD = 10.0
DAY_HOURS = (6.0, 18.5)  # between these the forest is lit; outside, a trap needs its IR flash

BUSHNELL_BAR = "bushnell_bar"  # white strip + orange logo (Bushnell Trophy Cam family)
WHITE_BAR = "white_bar"  # a white strip without the logo: another model, same layout
BUSHNELL_OVERLAY = "bushnell_overlay"  # "Bushnell" printed over the picture
MDY_LAYOUTS = (BUSHNELL_BAR, WHITE_BAR, BUSHNELL_OVERLAY)  # US cameras: month first
STRIP_LAYOUTS = (BUSHNELL_BAR, WHITE_BAR)

_TIME = r"(\d{1,2}):(\d{2}):(\d{2})\s*([AaPp][Mm])?"
_MDY = re.compile(r"(?<!\d)(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})\s*" + _TIME)
_YMD = re.compile(r"(?<!\d)(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})\s*" + _TIME)


@dataclass(frozen=True)
class TextCrop:
    """One place a frame's text may be: its layout and OCR-ready images of it.

    A reading counts only where every image gives the same date and time: a strip's clean text
    needs one; text over a picture gets a second, binarised image, and the two must agree.
    """

    layout: str  # BUSHNELL_BAR, WHITE_BAR, "bottom" or "top"
    images: tuple[Image.Image, ...]  # mode L, dark text on white


def strip_rows(gray: np.ndarray) -> int:
    """Rows of the white strip at the bottom of a grey frame; 0 where there is none."""
    height, width = gray.shape
    paper = (gray[:, width // 16 :] > STRIP_WHITE).mean(axis=1)
    limit = max(STRIP_MIN_ROWS + 1, int(STRIP_MAX_SHARE * height))
    rows = 0
    while rows < limit and paper[height - 1 - rows] >= STRIP_ROW:
        rows += 1
    if rows >= limit:  # a bright picture above: the strip ends at its lowest clean top edge
        rows = next(
            (
                r
                for r in range(STRIP_MIN_ROWS, limit)
                if paper[height - r] >= STRIP_EDGE and paper[height - r - 1] < STRIP_FILL
            ),
            0,
        )
    if rows < STRIP_MIN_ROWS or paper[height - rows :].mean() < STRIP_FILL:
        return 0
    return rows


def has_logo(rgb: np.ndarray, rows: int) -> bool:
    """Bushnell's orange logo box at the strip's left end (it stands taller than the strip)."""
    height, width = rgb.shape[:2]
    box = rgb[max(0, height - 2 * rows) :, : max(4, width // 16)].astype(np.int16)
    r, g, b = box[..., 0], box[..., 1], box[..., 2]
    orange = (r > 170) & (g > 50) & (g < 170) & (b < 110) & (r - b > 100)
    return bool(orange.mean() > 0.15)


def prepare(crop: Image.Image, light_text: bool, height: int = TEXT_HEIGHT) -> Image.Image:
    """Grey, dark text on white, stretched contrast, `height` px tall."""
    gray = crop.convert("L")
    if light_text:
        gray = ImageOps.invert(gray)
    gray = ImageOps.autocontrast(gray, cutoff=1)
    width = max(1, round(gray.width * height / max(1, gray.height)))
    return gray.resize((width, height), Image.Resampling.LANCZOS)


def binarise(gray: Image.Image) -> Image.Image:
    """Black and white at Otsu's threshold: the picture's texture drops out of the text."""
    arr = np.asarray(gray)
    p = np.bincount(arr.ravel(), minlength=256) / arr.size
    below = np.cumsum(p)
    mean_below = np.cumsum(p * np.arange(256))
    between = (mean_below[-1] * below - mean_below) ** 2 / (below * (1 - below) + 1e-12)
    return Image.fromarray(np.where(arr > int(np.argmax(between)), 255, 0).astype(np.uint8))


def text_crops(image: Image.Image) -> list[TextCrop]:
    """Where to read, best first: the strip's text if there is a strip, else both bands (none
    in a frame too small for legible text over the picture)."""
    rgb = np.asarray(image.convert("RGB"))
    gray = np.asarray(image.convert("L"))
    height, width = gray.shape
    rows = strip_rows(gray)
    if rows:
        layout = BUSHNELL_BAR if has_logo(rgb, rows) else WHITE_BAR
        box = (int(STRIP_TEXT_FROM * width), height - rows, width, height)
        return [TextCrop(layout, (prepare(image.crop(box), light_text=False),))]
    if height < BAND_MIN_FRAME:
        return []
    band = int(BAND_SHARE * height)
    crops = []
    for layout, (top, bottom) in (("bottom", (height - band, height)), ("top", (0, band))):
        region = gray[top:bottom]
        # Text printed over a picture is light on the dark picture (or dark on a light one).
        light = bool(np.median(region) < 128)
        crop = image.crop((0, top, width, bottom))
        ready = prepare(crop, light, BAND_HEIGHT)
        crops.append(TextCrop(layout, (ready, binarise(ready))))
    return crops


def parse_stamp(text: str, layout: str) -> tuple[dt.datetime, str] | None:
    """The first whole valid date and time in `text`, and the matched characters; else None.

    Year-first dates are read as Y-M-D. Otherwise month first (Bushnell, a US camera), except
    where the first number cannot be a month (then day first).
    """
    for pattern, year_first in ((_YMD, True), (_MDY, False)):
        for match in pattern.finditer(text):
            a, b, c, hh, mm, ss = (int(v) for v in match.groups()[:6])
            if year_first:
                year, month, day = a, b, c
            elif a > 12 and layout not in MDY_LAYOUTS:
                day, month, year = a, b, c
            else:
                month, day, year = a, b, c
            hh = _hour24(hh, match.group(7))
            try:
                return dt.datetime(year, month, day, hh, mm, ss), match.group(0)
            except ValueError:
                continue
    return None


def _hour24(hour: int, ampm: str | None) -> int:
    if not ampm:
        return hour
    if hour > 12:
        return 99  # "13:00 PM" is no clock reading: datetime() rejects it
    return hour % 12 + (12 if ampm.lower() == "pm" else 0)


def channel_spread(rgb: np.ndarray) -> float:
    """Median |R-G| + |G-B| over the picture: 0 for an IR frame, 19-49 for the real colour ones.

    The median ignores a coloured logo or overlay (up to half the picture), which a mean would not.
    """
    height = rgb.shape[0]
    picture = rgb[int(BAND_SHARE * height) : int((1 - STRIP_MAX_SHARE) * height) : 2, ::2]
    picture = picture.astype(np.int16)
    spread = np.abs(picture[..., 0] - picture[..., 1]) + np.abs(picture[..., 1] - picture[..., 2])
    return float(np.median(spread))


def night_flag(spread: float, hour: float | None) -> int | None:
    """1 for an IR (grey) frame, 0 for a colour one; a frame in between is told by its clock.

    "Night" is the camera's own judgement of darkness: a trap under dense canopy fires its IR
    flash in the afternoon too (the real ZJ000014 is grey at 15:59).
    """
    if spread < IR_SPREAD:
        return 1
    if spread > COLOUR_SPREAD:
        return 0
    if hour is None:
        return None
    return int(not DAY_HOURS[0] <= hour < DAY_HOURS[1])


def hour_of(when: dt.datetime) -> float:
    """Hour of day as a float in [0, 24): 05:37:45 -> 5.629."""
    return when.hour + when.minute / 60 + when.second / 3600
