"""Decode every image once, resize it, and keep it as uint8 in a memory-mapped array.

Decoding a 960x540 JPEG costs far more than augmenting a 256-px array, so the trainer reads
the cache every epoch and never the JPEGs. A cache is keyed by its sources (path, size, mtime)
and its pixel size, so a changed image, crop or size never reuses a stale one.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageFile, UnidentifiedImageError
from tqdm.auto import tqdm

from kaggle_style.io import atomic_path, write_csv, write_json

CACHE_VERSION = 2  # 2: JPEGs decoded with draft (DCT) scaling
MIN_SIDE = 8  # smaller images carry no usable signal
MAX_PIXELS = 200_000_000  # guard against decompression bombs, far above any camera


class BadImageError(ValueError):
    """An image that cannot be decoded into RGB pixels."""


def decode_rgb(path: str | os.PathLike, draft: int | None = None) -> np.ndarray:
    """RGB uint8 pixels of any image PIL reads (grayscale, IR, CMYK, PNG named .jpg...).

    Truncated files are errors, not silently padded images. With `draft`, a JPEG is decoded at
    the smallest power-of-two reduction that keeps both sides at least `draft` px (libjpeg's DCT
    scaling): 2-4x faster than a full decode when the target is much smaller than the frame.
    """
    path = Path(path)
    if not path.is_file():
        raise BadImageError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise BadImageError(f"{path}: empty file (0 bytes)")
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with Image.open(path) as img:
            if img.width * img.height > MAX_PIXELS:
                raise BadImageError(f"{path}: {img.width}x{img.height} is too large to decode")
            width, height = img.size
            if draft:
                img.draft("RGB", (draft, draft))
            img.load()
            rgb = img.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise BadImageError(f"{path}: cannot decode ({err})") from err
    if min(width, height) < MIN_SIDE:
        raise BadImageError(f"{path}: {width}x{height} is too small")
    return np.asarray(rgb)


def load_resized(path: str | os.PathLike, size: int) -> np.ndarray:
    """Decode and resize to a `size` x `size` square (the classifier's input is square)."""
    pixels = decode_rgb(path, draft=size)
    img = Image.fromarray(pixels)
    if img.size != (size, size):
        # what the draft left (under 2x on a side) and the aspect change; BILINEAR is smooth here
        img = img.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0)
    return np.asarray(img)


def _load_one(args: tuple[str, int]) -> tuple[np.ndarray | None, str | None]:
    import cv2

    cv2.setNumThreads(0)
    path, size = args
    try:
        return load_resized(path, size), None
    except BadImageError as err:
        return None, str(err)


@dataclass(frozen=True)
class ImageCache:
    """`pixels[i]` is source `i` resized; `ok[i]` is False where it could not be decoded."""

    folder: Path
    pixels: np.ndarray  # (N, size, size, 3) uint8, memory-mapped read-only
    ok: np.ndarray  # (N,) bool
    errors: dict[int, str]

    @property
    def size(self) -> int:
        return int(self.pixels.shape[1])


def cache_key(paths: Sequence[str | os.PathLike], size: int) -> str:
    """A hash of what the cache holds: each source's path, byte size and mtime, and the size."""
    digest = hashlib.sha256(f"v{CACHE_VERSION}|{size}".encode())
    for path in paths:
        try:
            stat = os.stat(path)
            digest.update(f"|{os.path.abspath(path)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
        except OSError:
            digest.update(f"|{os.path.abspath(path)}:missing".encode())
    return digest.hexdigest()[:16]


def build_cache(
    paths: Sequence[str | os.PathLike],
    size: int,
    cache_dir: str | os.PathLike,
    workers: int = 0,
    progress: bool = True,
    desc: str = "cache",
) -> ImageCache:
    """Decode `paths` once into `cache_dir/<key>/`; reuse it when the key matches."""
    folder = Path(cache_dir) / cache_key(paths, size)
    done = folder / "meta.json"
    if not done.exists():
        _fill_cache(folder, [str(p) for p in paths], size, workers, progress, desc)
    meta = json.loads(done.read_text())
    pixels = np.load(folder / "pixels.npy", mmap_mode="r")
    ok = np.load(folder / "ok.npy")
    errors = {int(k): v for k, v in meta["errors"].items()}
    return ImageCache(folder=folder, pixels=pixels, ok=ok, errors=errors)


def _fill_cache(
    folder: Path, paths: list[str], size: int, workers: int, progress: bool, desc: str
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    ok = np.zeros(len(paths), dtype=bool)
    errors: dict[int, str] = {}
    with atomic_path(folder / "pixels.npy") as tmp:
        # open_memmap appends nothing to the name, so the temp file becomes the array file
        pixels = np.lib.format.open_memmap(
            tmp, mode="w+", dtype=np.uint8, shape=(len(paths), size, size, 3)
        )
        jobs = [(p, size) for p in paths]
        bar = tqdm(total=len(paths), desc=desc, unit="img", disable=not progress, leave=False)
        if workers > 0 and len(paths) > 64:
            with ProcessPoolExecutor(workers) as pool:
                results = pool.map(_load_one, jobs, chunksize=16)
                _store(results, pixels, ok, errors, bar)
        else:
            _store(map(_load_one, jobs), pixels, ok, errors, bar)
        bar.close()
        pixels.flush()
        del pixels
    with atomic_path(folder / "ok.npy") as tmp, open(tmp, "wb") as handle:
        np.save(handle, ok)
    write_csv(
        folder / "bad_images.csv",
        pd.DataFrame({"index": list(errors), "path": [paths[i] for i in errors],
                      "error": list(errors.values())}),
    )
    for message in list(errors.values())[:20]:
        warnings.warn(f"bad image: {message}", stacklevel=2)
    write_json(folder / "meta.json", {"size": size, "n": len(paths), "errors": errors,
                                      "version": CACHE_VERSION})


def _store(results, pixels: np.ndarray, ok: np.ndarray, errors: dict[int, str], bar) -> None:
    for index, (array, error) in enumerate(results):
        if array is None:
            errors[index] = error or "unknown error"
        else:
            pixels[index] = array
            ok[index] = True
        bar.update(1)
