"""Decode every image once, resize it, and keep it in a cache the trainer reads every epoch.

Decoding a 960x540 JPEG costs far more than augmenting a 256-px array, so the trainer reads
the cache every epoch and never the JPEGs. A cache is keyed by its sources (path, size, mtime),
its pixel size and its form, so a changed image, crop or size never reuses a stale one.

The cache's forms (uint8 array, compressed entries) are in `cache_forms`. Whatever a file
holds, decoding gives RGB pixels or a `BadImageError` naming the file: a hostile or broken image
is listed, never a crash.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import os
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageFile, ImageOps
from tqdm.auto import tqdm

from kaggle_style.data import cache_admin
from kaggle_style.data.cache_forms import (
    BUDGET_SHARE,
    CACHE_FORMS,
    CODECS,
    ENTRIES_FILE,
    OFFSETS_FILE,
    PIXELS_FILE,
    CompressedPixels,
    encode,
    open_pixels,
)
from kaggle_style.errors import UserError
from kaggle_style.files import disk_full_error, is_disk_full, write_csv, write_json

CACHE_VERSION = 3  # 3: >8-bit images scaled, EXIF orientation applied; 2: JPEG draft decoding
MIN_SIDE = 8  # smaller images carry no usable signal
MAX_PIXELS = 200_000_000  # default pixel limit: far above any camera, far below a bomb's claim
_DEEP_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


class BadImageError(ValueError):
    """An image that cannot be decoded into RGB pixels."""


# ------------------------------------------------------------------------------------ decoding


@contextlib.contextmanager
def _opened(path: Path, max_pixels: int) -> Iterator[Image.Image]:
    """An open image whose header passed the pixel limit; any decoder error -> BadImageError.

    PIL's own bomb check is off while opening: ours says which file, what limit, and what to do.
    Every exception inside is a decoder's (PIL raises OSError, SyntaxError, ValueError,
    struct.error, IndexError, MemoryError, DecompressionBombError ... on hostile input).
    """
    if not path.is_file():
        raise BadImageError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise BadImageError(f"{path}: empty file (0 bytes)")
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    limit = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Exception as err:  # any decoder error: see the docstring
        raise BadImageError(f"{path}: cannot decode ({type(err).__name__}: {err})") from err
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    with image:
        width, height = image.size
        if width * height > max_pixels:
            raise BadImageError(
                f"{path}: its header claims {width}x{height} = {width * height:,} pixels, over "
                f"the limit of {max_pixels:,} (max_pixels); a broken or hostile file, or raise "
                "max_pixels if the image really is that large"
            )
        try:
            yield image
        except BadImageError:
            raise
        except Exception as err:  # any decoder error: see the docstring
            raise BadImageError(f"{path}: cannot decode ({type(err).__name__}: {err})") from err


def to_uint8(array: np.ndarray, mode: str) -> np.ndarray:
    """8-bit pixels from a >8-bit single-channel image (PIL modes I;16*, I, F).

    PIL's convert("RGB") clips these at 255 (a 16-bit frame turns near white). Values are scaled
    from the range the mode declares (I;16: 0-65535); for I and F, from the smallest of 0-1
    (F only), 0-255 and 0-65535 that holds every value, else stretched from their min to max.
    """
    values = array.astype(np.float64)
    finite = values[np.isfinite(values)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    top: float | None
    if mode.startswith("I;16"):
        top = 65535.0
    else:
        ranges = ((1.0,) if mode == "F" else ()) + (255.0, 65535.0)
        top = next((r for r in ranges if lo >= 0 and hi <= r), None)
    if top is None:  # outside every range: stretch what is there
        top, values = hi - lo, values - lo
    scaled = np.round(np.nan_to_num(values, nan=0.0, posinf=top, neginf=0.0) * (255.0 / (top or 1)))
    return np.clip(scaled, 0, 255).astype(np.uint8)


def decode_image(
    path: str | os.PathLike, draft: int | None = None, max_pixels: int = MAX_PIXELS
) -> Image.Image:
    """An RGB PIL image of any file PIL reads (grey, IR, CMYK, 16-bit, PNG named .jpg ...), turned
    upright by its EXIF orientation as MegaDetector does, so boxes and pixels always agree.

    Truncated files are errors, not silently padded images. With `draft`, a JPEG is decoded at
    the smallest power-of-two reduction that keeps both sides at least `draft` px (libjpeg's DCT
    scaling): 2-4x faster than a full decode when the target is much smaller than the frame.
    """
    path = Path(path)
    with _opened(path, max_pixels) as image:
        if draft:
            image.draft("RGB", (draft, draft))
        image.load()
        if image.getexif().get(0x0112, 1) != 1:
            image = ImageOps.exif_transpose(image)
        if image.mode in _DEEP_MODES:
            return Image.fromarray(to_uint8(np.asarray(image), image.mode)).convert("RGB")
        return image.convert("RGB")


def frame_size(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """(width, height) after the EXIF rotation, from the header only (no pixels decoded)."""
    with _opened(Path(path), max_pixels) as image:
        width, height = image.size
        if image.getexif().get(0x0112) in (5, 6, 7, 8):  # rotated by 90 or 270 degrees
            width, height = height, width
    return width, height


def decode_rgb(
    path: str | os.PathLike, draft: int | None = None, max_pixels: int = MAX_PIXELS
) -> np.ndarray:
    """RGB uint8 pixels (H, W, 3); images under MIN_SIDE px on a side are bad images too."""
    pixels = np.asarray(decode_image(path, draft, max_pixels))
    # a draft never takes a side under min(its own side, draft), so this is the file's size
    if min(pixels.shape[:2]) < MIN_SIDE:
        raise BadImageError(f"{path}: {pixels.shape[1]}x{pixels.shape[0]} is too small")
    return pixels


def load_resized(path: str | os.PathLike, size: int, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode and resize to a `size` x `size` square (the classifier's input is square)."""
    img = Image.fromarray(decode_rgb(path, draft=size, max_pixels=max_pixels))
    if img.size != (size, size):
        # what the draft left (under 2x on a side) and the aspect change; BILINEAR is smooth here
        img = img.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0)
    return np.asarray(img)


# ------------------------------------------------------------------------------------- cache


@dataclass(frozen=True)
class ImageCache:
    """`pixels[i]` is source `i` resized; `ok[i]` is False where it could not be decoded."""

    folder: Path
    pixels: np.ndarray | CompressedPixels  # (N, size, size, 3) uint8, read lazily
    ok: np.ndarray  # (N,) bool
    errors: dict[int, str]

    @property
    def size(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def pixels_file(self) -> Path:
        """What `open_pixels` (and so each loader worker) opens."""
        return self.folder / (
            ENTRIES_FILE if isinstance(self.pixels, CompressedPixels) else PIXELS_FILE
        )


def cache_size_for(input_size: int, scale: float) -> int:
    """The cached side: a little over the model's input, so random crops keep detail."""
    return max(input_size, math.ceil(input_size * scale))


def cache_key(
    paths: Sequence[str | os.PathLike], size: int, form: str = "uint8", max_pixels: int = MAX_PIXELS
) -> str:
    """A hash of what the cache holds: each source's path, byte size and mtime, the size, and
    the form and pixel limit where they differ from the defaults."""
    head = f"v{CACHE_VERSION}|{size}"
    head += "" if form == "uint8" else f"|{form}{CODECS[form][2]}"
    head += "" if max_pixels == MAX_PIXELS else f"|max_pixels={max_pixels}"
    digest = hashlib.sha256(head.encode())
    for path in paths:
        try:
            stat = os.stat(path)
            digest.update(f"|{os.path.abspath(path)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
        except OSError:
            digest.update(f"|{os.path.abspath(path)}:missing".encode())
    return digest.hexdigest()[:16]


def estimate_bytes(n: int, size: int, form: str = "uint8") -> int:
    """Disk a cache of `n` images needs (compressed forms: a budget above what was measured)."""
    raw = n * size * size * 3
    return raw + 128 if form == "uint8" else int(raw * BUDGET_SHARE[form]) + 8 * (n + 1) + 256


# ---------------------------------------------------------------------------------- building


def _load_one(args: tuple[str, int, str, int]) -> tuple[np.ndarray | bytes | None, str | None]:
    import cv2

    cv2.setNumThreads(0)
    path, size, form, max_pixels = args
    try:
        pixels = load_resized(path, size, max_pixels)
    except BadImageError as err:
        return None, str(err)
    return (pixels if form == "uint8" else encode(pixels, form)), None


def build_cache(
    paths: Sequence[str | os.PathLike],
    size: int,
    cache_dir: str | os.PathLike,
    workers: int = 0,
    progress: bool = True,
    desc: str = "cache",
    form: str = "uint8",
    max_pixels: int = MAX_PIXELS,
) -> ImageCache:
    """Decode `paths` once into `cache_dir/<key>/`; reuse it when the key matches.

    Processes that ask for the same cache at once (DDP ranks, two runs) build it once: the first
    takes the folder's lock and builds, the others wait for it and reuse the result.
    """
    if form not in CACHE_FORMS:
        raise UserError(f"cache form {form!r} is unknown; choose one of {', '.join(CACHE_FORMS)}")
    folder = Path(cache_dir) / cache_key(paths, size, form, max_pixels)
    done = folder / cache_admin.META_FILE
    if not done.exists():
        with _build_lock(folder):
            if not done.exists():
                _fill_cache(
                    folder, [str(p) for p in paths], size, workers, progress, desc, form, max_pixels
                )
    meta = json.loads(done.read_text())
    pixels = open_pixels(folder / (PIXELS_FILE if form == "uint8" else ENTRIES_FILE))
    ok = np.load(folder / "ok.npy")
    errors = {int(k): v for k, v in meta["errors"].items()}
    return ImageCache(folder=folder, pixels=pixels, ok=ok, errors=errors)


@contextlib.contextmanager
def _build_lock(folder: Path) -> Iterator[None]:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = open(folder / ".build.lock", "a")  # noqa: SIM115 - held for the whole build
    except PermissionError as err:
        raise UserError(
            f"cannot write the image cache in {folder} ({err.strerror}); set "
            "cache_dir to a writable folder"
        ) from err
    with handle:
        with contextlib.suppress(OSError):  # a filesystem without locks: build without one
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


_OUTPUTS = (PIXELS_FILE, ENTRIES_FILE, OFFSETS_FILE, "ok.npy", "bad_images.csv")


def _fill_cache(
    folder: Path,
    paths: list[str],
    size: int,
    workers: int,
    progress: bool,
    desc: str,
    form: str,
    max_pixels: int,
) -> None:
    """Under the folder's lock: clear a dead build's leftovers, check room, then write."""
    cache_admin.remove_stale_temps(folder)
    for name in _OUTPUTS:  # an unfinished build's files (no meta.json): never reused
        (folder / name).unlink(missing_ok=True)
    what = f"the {form} image cache ({len(paths)} images at {size} px)"
    cache_admin.check_free_space(folder, estimate_bytes(len(paths), size, form), what)
    try:
        ok, errors = _write_pixels(folder, paths, size, workers, progress, desc, form, max_pixels)
        np.save(folder / "ok.npy", ok)
        write_csv(
            folder / "bad_images.csv",
            pd.DataFrame(
                {
                    "index": list(errors),
                    "path": [paths[i] for i in errors],
                    "error": list(errors.values()),
                }
            ),
        )
        write_json(
            folder / cache_admin.META_FILE,
            {
                "size": size,
                "n": len(paths),
                "form": form,
                "errors": errors,
                "version": CACHE_VERSION,
            },
        )
    except BaseException as err:
        for name in _OUTPUTS:
            (folder / name).unlink(missing_ok=True)
        if is_disk_full(err):
            raise disk_full_error(err, folder, what, cache_admin.CACHE_FIX) from err
        raise
    for message in list(errors.values())[:20]:
        warnings.warn(f"bad image: {message}", stacklevel=3)


def _write_pixels(
    folder: Path,
    paths: list[str],
    size: int,
    workers: int,
    progress: bool,
    desc: str,
    form: str,
    max_pixels: int,
) -> tuple[np.ndarray, dict[int, str]]:
    """Stream every image through a file object (a full disk is an OSError, never the SIGBUS
    of a memory-mapped write) into a temp file that only a complete write renames into place."""
    ok = np.zeros(len(paths), dtype=bool)
    errors: dict[int, str] = {}
    target = folder / (PIXELS_FILE if form == "uint8" else ENTRIES_FILE)
    tmp = cache_admin.temp_path(target)
    offsets = [0]
    blank = bytes(size * size * 3)
    jobs = [(p, size, form, max_pixels) for p in paths]
    bar = tqdm(total=len(paths), desc=desc, unit="img", disable=not progress, leave=False)
    try:
        with open(tmp, "wb") as handle, contextlib.ExitStack() as stack:
            if form == "uint8":
                header = {
                    "descr": "|u1",
                    "fortran_order": False,
                    "shape": (len(paths), size, size, 3),
                }
                np.lib.format.write_array_header_1_0(handle, header)
                cache_admin.preallocate(handle, handle.tell() + len(paths) * len(blank))
            results: Any = map(_load_one, jobs)
            if workers > 0 and len(paths) > 64:
                pool = ProcessPoolExecutor(workers)
                # on an error (a full disk), drop the queued images instead of decoding them all
                stack.callback(pool.shutdown, wait=True, cancel_futures=True)
                results = pool.map(_load_one, jobs, chunksize=16)
            for index, (data, error) in enumerate(results):
                if data is None:
                    errors[index] = error or "unknown error"
                ok[index] = data is not None
                if form == "uint8":
                    handle.write(blank if data is None else data.tobytes())
                else:
                    handle.write(data or b"")
                    offsets.append(offsets[-1] + len(data or b""))
                bar.update(1)
        if form != "uint8":
            np.save(folder / OFFSETS_FILE, np.asarray(offsets, dtype=np.int64))
        os.replace(tmp, target)
    finally:
        bar.close()
        tmp.unlink(missing_ok=True)
    return ok, errors
