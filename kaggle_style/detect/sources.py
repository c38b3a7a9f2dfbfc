"""Which images a detection stage works on, how they are decoded, and how they match the keys
of a detections file.

`detect`, `crop` and `show-detections` all take either a DrivenData folder (`--data`) or any
folder of images (`--images`); one table (`id, key, path`) describes both, so the three stages
can never disagree about which file an id means or how its pixels are oriented.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from PIL import Image

from kaggle_style.constants import FILEPATH_COL, ID_COL
from kaggle_style.data.images import MAX_PIXELS, decode_image
from kaggle_style.data.tables import load_competition_data
from kaggle_style.detect.errors import SourceError
from kaggle_style.detect.mdjson import Detection, DetectionFile
from kaggle_style.task import DEFAULT_FOLDS, load_task

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
KEY_COL = "key"
PATH_COL = "path"


def image_table(data: Path | None = None, images: Path | None = None) -> pd.DataFrame:
    """`id, key, path` for every image: key is how the detections file names the image.

    --data: every train and test row; id = DrivenData id, key = the `filepath` column.
    --images: every image below the folder (recursive, hidden files skipped);
    id = key = the path relative to the folder, with forward slashes.
    """
    if (data is None) == (images is None):
        raise SourceError("give exactly one of --data DIR (DrivenData layout) or --images DIR")
    if data is not None:
        # the task recorded by `folds` (else conservision): its tables and image patterns
        dataset = load_competition_data(data, load_task(None, folds=DEFAULT_FOLDS))
        rows = pd.concat([dataset.train, dataset.test], ignore_index=True)
        root = Path(data).resolve()
        return pd.DataFrame(
            {
                ID_COL: rows[ID_COL].astype(str),
                KEY_COL: rows[FILEPATH_COL].astype(str),
                PATH_COL: [root / p for p in rows[FILEPATH_COL]],
            }
        )
    assert images is not None  # exactly one of the two, checked above
    root = Path(images).resolve()
    if not root.is_dir():
        raise SourceError(f"{images}: image folder not found")
    paths = sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    if not paths:
        raise SourceError(f"{images}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found")
    keys = [p.relative_to(root).as_posix() for p in paths]
    return pd.DataFrame({ID_COL: keys, KEY_COL: keys, PATH_COL: paths})


def load_rgb(path: str | Path, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode fully, apply the EXIF orientation (as MegaDetector does) and convert to RGB, so
    that box coordinates mean the same pixels in detection, cropping, drawing and training.
    Any decoder error is a `BadImageError` (a ValueError) naming the file."""
    return decode_image(path, max_pixels=max_pixels)


def _normalised(key: str) -> str:
    key = key.replace("\\", "/")
    while key.startswith("./"):
        key = key[2:]
    return key


def match_entries(
    detections: DetectionFile, keys: list[str]
) -> dict[str, list[Detection] | str | None]:
    """Each key's detections (a list), its failure message (a str), or None when absent.

    Keys match exactly, then after normalising slashes, then by file name when that is unique
    in the detections file: a file MegaDetector wrote elsewhere (run on another root folder)
    still lines up with our images.
    """
    entries: dict[str, list[Detection] | str] = {**detections.failures, **detections.images}
    by_norm = {_normalised(k): v for k, v in entries.items()}
    by_name: dict[str, list[Detection] | str | None] = {}
    for k, v in by_norm.items():
        name = k.rsplit("/", 1)[-1]
        by_name[name] = None if name in by_name else v  # ambiguous names match nothing
    out: dict[str, list[Detection] | str | None] = {}
    for key in keys:
        if key in entries:
            out[key] = entries[key]
        elif _normalised(key) in by_norm:
            out[key] = by_norm[_normalised(key)]
        else:
            out[key] = by_name.get(_normalised(key).rsplit("/", 1)[-1])
    return out


def animal_categories(detections: DetectionFile) -> set[str]:
    """Category ids named 'animal' (MegaDetector's '1' when the file names none)."""
    ids = {cid for cid, name in detections.categories.items() if str(name).lower() == "animal"}
    return ids or {"1"}
