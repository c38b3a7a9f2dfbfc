"""Tesseract on many text crops at once: one page, one process call, words mapped back by line.

Starting Tesseract costs about as much as reading one strip, so a worker stacks its strips on
one page (with white gaps) and assigns each recognised word to the strip whose rows hold the
word's centre: about 6x faster than a call per strip, with the same readings on the real frames.
Text printed over a picture does not survive stacking (the pictures' texture breaks the page's
layout analysis), so those bands are read one call each.
Tesseract was chosen over a digit reader of our own trained on rendered digits because it read
more of the real frames' degraded copies exactly (docs/concepts/camera-clock.md).
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from typing import Any

from PIL import Image

from kaggle_style.errors import UserError

PAGE_GAP = 24  # white rows between crops: Tesseract must see separate lines
PAGE_PAD = 16
# psm 6: one uniform block of text, i.e. our stacked strips; psm 7: one line (a band of a
# picture with text over it: stacked, such bands lose their text to the pictures' texture, so
# each gets its own call). No character whitelist: with one, Tesseract 5 reports confidence 0
# for every word and glues the date to the time.
PAGE_CONFIG = "--psm 6"
LINE_CONFIG = "--psm 7"
INSTALL_HINT = (
    "install Tesseract (`apt-get install -y tesseract-ocr`, or `make install`, which does it) "
    "and the Python package (`pip install pytesseract`)"
)


class OcrError(UserError):
    """Tesseract (the program or its Python package) is not installed."""


@dataclass(frozen=True)
class Word:
    left: int
    text: str
    confidence: float  # 0-1, Tesseract's own


def tesseract_version() -> str:
    """The installed Tesseract's version; an `OcrError` that says how to install it if none."""
    try:
        import pytesseract
    except ImportError as err:
        raise OcrError(f"the meta stage reads info bars with Tesseract: {INSTALL_HINT}") from err
    if shutil.which(pytesseract.pytesseract.tesseract_cmd) is None:
        raise OcrError(
            f"the meta stage reads info bars with Tesseract, and `tesseract` is not on PATH: "
            f"{INSTALL_HINT}"
        )
    return str(pytesseract.get_tesseract_version())


def stack(crops: list[Image.Image]) -> tuple[Image.Image, list[tuple[int, int]]]:
    """One white page holding the crops one under another, and each crop's rows on it."""
    width = max(c.width for c in crops) + 2 * PAGE_PAD
    height = sum(c.height for c in crops) + PAGE_GAP * (len(crops) + 1)
    page = Image.new("L", (width, height), 255)
    spans, top = [], PAGE_GAP
    for crop in crops:
        page.paste(crop.convert("L"), (PAGE_PAD, top))
        spans.append((top, top + crop.height))
        top += crop.height + PAGE_GAP
    return page, spans


def read_words(crops: list[Image.Image]) -> list[list[Word]]:
    """The words Tesseract finds in each crop, left to right: one call per crop height.

    Crops of one height share a page: mixed heights make Tesseract's layout analysis misread
    the smaller text (a strip's 11-21-2016 became 41-21-2016 beside 100 px bands).
    """
    words: list[list[Word]] = [[] for _ in crops]
    for height in sorted({c.height for c in crops}):
        index = [k for k, c in enumerate(crops) if c.height == height]
        for k, found in zip(index, _read_page([crops[k] for k in index]), strict=True):
            words[k] = found
    return words


def read_line(crop: Image.Image) -> list[Word]:
    """The words of one line of text (one Tesseract call)."""
    page, spans = stack([crop])
    return _words(_data(page, LINE_CONFIG), spans)[0]


def _data(page: Image.Image, config: str) -> dict[str, list[Any]]:
    import pytesseract

    # One thread per call: the workers are the parallelism (Tesseract's OpenMP threads fight).
    # Set for the Tesseract child only, so no later child of this process inherits the limit.
    before = os.environ.get("OMP_THREAD_LIMIT")
    os.environ["OMP_THREAD_LIMIT"] = "1"
    try:
        return pytesseract.image_to_data(page, config=config, output_type=pytesseract.Output.DICT)
    finally:
        if before is None:
            del os.environ["OMP_THREAD_LIMIT"]
        else:
            os.environ["OMP_THREAD_LIMIT"] = before


def _read_page(crops: list[Image.Image]) -> list[list[Word]]:
    page, spans = stack(crops)
    return _words(_data(page, PAGE_CONFIG), spans)


def _words(data: dict[str, list[Any]], spans: list[tuple[int, int]]) -> list[list[Word]]:
    """Each recognised word, given to the crop whose rows hold its centre."""
    words: list[list[Word]] = [[] for _ in spans]
    margin = PAGE_GAP // 2
    for text, conf, top, height, left in zip(
        data["text"], data["conf"], data["top"], data["height"], data["left"], strict=True
    ):
        if not str(text).strip():
            continue
        middle = top + height / 2
        for k, (start, end) in enumerate(spans):
            if start - margin <= middle <= end + margin:
                words[k].append(Word(int(left), str(text), max(0.0, float(conf)) / 100))
                break
    return [sorted(ws, key=lambda w: w.left) for ws in words]


def line_of(words: list[Word]) -> str:
    return " ".join(w.text for w in words)


def confidence_of(words: list[Word], matched: str) -> float:
    """The least confident word that holds part of the matched date and time."""
    used = [
        w.confidence
        for w in words
        if any(len(part) > 1 and part in matched for part in re.findall(r"[\d:/.-]+", w.text))
    ]
    return min(used) if used else 0.0
