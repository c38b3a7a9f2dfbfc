"""Draw boxes and confidences on images into PNGs (library of `kaggle-style show-detections`).

Thresholds and padding are chosen by looking: a box that sits beside the animal, or a
confident box on a tree trunk, is invisible in a manifest and obvious in a picture.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from kaggle_style.data.images import BadImageError
from kaggle_style.detect import mdjson
from kaggle_style.detect.sources import (
    KEY_COL,
    PATH_COL,
    animal_categories,
    image_table,
    load_rgb,
    match_entries,
)
from kaggle_style.errors import UserError
from kaggle_style.files import atomic_folder, check_outputs

COLOURS = {"animal": (255, 64, 0), "person": (0, 160, 255), "vehicle": (255, 220, 0)}


def draw_detections(
    image: Image.Image,
    detections: list[mdjson.Detection],
    categories: dict[str, str],
    min_conf: float = 0.1,
) -> Image.Image:
    """A copy of `image` with each box >= min_conf outlined and labelled 'name conf'."""
    out = image.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    width, height = out.size
    line = max(2, round(min(width, height) / 200))
    font = ImageFont.load_default(size=max(12, round(min(width, height) / 30)))
    for det in sorted(detections, key=lambda d: d.conf):  # strongest drawn last, on top
        if det.conf < min_conf:
            continue
        name = categories.get(det.category, det.category)
        colour = COLOURS.get(name, (255, 0, 255))
        x, y, w, h = det.bbox
        box = (x * width, y * height, (x + w) * width, (y + h) * height)
        draw.rectangle(box, outline=colour, width=line)
        label = f"{name} {det.conf:.2f}"
        left, top, right, bottom = draw.textbbox((box[0], box[1]), label, font=font)
        shift = min(box[1], bottom - top + line)  # label above the box when there is room
        draw.rectangle((left, top - shift, right + line, bottom - shift), fill=colour)
        draw.text((box[0], box[1] - shift), label, fill=(0, 0, 0), font=font)
    return out


def _png_name(key: str) -> str:
    return key.replace("\\", "/").strip("/").replace("/", "__").rsplit(".", 1)[0] + ".png"


def show_detections(
    detections: Path,
    out: Path,
    data: Path | None = None,
    images: Path | None = None,
    min_conf: float = 0.1,
    limit: int | None = None,
) -> list[Path]:
    """Write one PNG per image that has an entry in the detections file; return their paths."""
    check_outputs({"--out": out}, {"--detections": detections, "--data": data, "--images": images})
    det_file = mdjson.read(detections)
    table = image_table(data, images)
    entries = match_entries(det_file, list(table[KEY_COL]))
    animals = animal_categories(det_file)
    with atomic_folder(out) as folder:  # no PNG of an older call survives beside these
        names, unreadable = _draw_all(det_file, table, entries, folder, min_conf, limit)
        if not names:  # raised inside: the old folder stays as it was
            why = f"; unreadable: {unreadable[0]}" if unreadable else ""
            raise UserError(
                f"{detections}: none of its entries for the {len(table)} images could be drawn "
                f"(no detections, failures only or unreadable images{why}); nothing written"
            )
    if unreadable:
        print(
            f"show-detections: {len(unreadable)} unreadable image(s) left out ({unreadable[0]})",
            file=sys.stderr,
        )
    written = [Path(out) / name for name in names]
    n_animals = sum(
        any(d.category in animals and d.conf >= min_conf for d in found)
        for found in (entries[k] for k in table[KEY_COL])
        if isinstance(found, list)
    )
    print(
        f"show-detections: {len(written)} PNGs in {out} ({n_animals} images with an animal "
        f">= {min_conf})",
        file=sys.stderr,
    )
    return written


def _draw_all(
    det_file: mdjson.DetectionFile,
    table: pd.DataFrame,
    entries: dict[str, Any],
    folder: Path,
    min_conf: float,
    limit: int | None,
) -> tuple[list[str], list[str]]:
    """(the PNG names drawn into `folder`, one per detected image (at most `limit`); the
    unreadable images left out)."""
    written: list[str] = []
    unreadable: list[str] = []
    for key, path in zip(table[KEY_COL], table[PATH_COL], strict=True):
        entry = entries[key]
        if not isinstance(entry, list):
            continue  # not detected, or a failure: nothing to draw
        if limit is not None and len(written) >= limit:
            break
        try:
            image = load_rgb(path)
        except BadImageError as err:
            unreadable.append(str(err))
            continue
        picture = draw_detections(image, entry, det_file.categories, min_conf)
        picture.save(folder / _png_name(key), format="PNG")
        written.append(_png_name(key))
    return written, unreadable
