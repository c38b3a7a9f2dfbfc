"""The image cache's forms on disk, and the one way to read any of them (`open_pixels`).

`uint8`: one .npy array memory-mapped by every loader worker, the fastest read, 3*side^2 bytes
an image. Compressed (`jpeg`, `webp`, lossless `png`): each image's codec bytes back to back in
`entries.bin` with their offsets, decoded in the workers: several times smaller on disk.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np

from kaggle_style.data.cache_admin import META_FILE

CacheForm = Literal["uint8", "jpeg", "webp", "png"]
CACHE_FORMS: tuple[str, ...] = ("uint8", "jpeg", "webp", "png")
# form -> (file extension, OpenCV quality flag, default quality); png's "quality" is zlib level
CODECS = {
    "jpeg": (".jpg", "IMWRITE_JPEG_QUALITY", 90),
    "webp": (".webp", "IMWRITE_WEBP_QUALITY", 90),
    "png": (".png", "IMWRITE_PNG_COMPRESSION", 1),
}
# Bytes a compressed entry is budgeted before the build, as a share of the uint8 bytes: above
# what `benchmarks.cache_bench` measured on camera-trap frames (JPEG q90 ~0.1, PNG ~0.6).
BUDGET_SHARE = {"jpeg": 0.3, "webp": 0.3, "png": 1.0}
PIXELS_FILE = "pixels.npy"  # uint8 form
ENTRIES_FILE = "entries.bin"  # compressed forms: the blobs back to back...
OFFSETS_FILE = "offsets.npy"  # ...and where each starts (n + 1 int64)


def encode(pixels: np.ndarray, form: str, quality: int | None = None) -> bytes:
    """One compressed cache entry (RGB in, the codec's bytes out)."""
    import cv2

    ext, flag, default = CODECS[form]
    ok, data = cv2.imencode(
        ext,
        cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR),
        [getattr(cv2, flag), default if quality is None else quality],
    )
    if not ok:
        raise ValueError(f"OpenCV could not encode a {pixels.shape} image as {form}")
    return data.tobytes()


def decode_entry(data: bytes | np.ndarray) -> np.ndarray:
    """RGB uint8 pixels of one compressed cache entry."""
    import cv2

    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError("OpenCV could not decode a compressed cache entry")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class CompressedPixels:
    """Read side of a compressed cache, shaped like the uint8 array: `pixels[i]` is image i.

    Each DataLoader worker opens the file itself (`os.pread`: no shared offset, no mmap).
    """

    def __init__(self, entries_file: str | os.PathLike) -> None:
        self.file = Path(entries_file)
        self.offsets = np.load(self.file.with_name(OFFSETS_FILE))
        size = int(json.loads(self.file.with_name(META_FILE).read_text())["size"])
        self.shape = (len(self.offsets) - 1, size, size, 3)
        self._fd: int | None = None

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: int) -> np.ndarray:
        if self._fd is None:
            self._fd = os.open(self.file, os.O_RDONLY)
        start, end = int(self.offsets[index]), int(self.offsets[index + 1])
        if end == start:  # a bad image: zeros, like the uint8 form
            return np.zeros(self.shape[1:], np.uint8)
        return decode_entry(os.pread(self._fd, end - start, start))

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_fd": None}  # a worker started by spawn opens its own

    def __del__(self) -> None:
        if self._fd is not None:
            os.close(self._fd)


def open_pixels(path: str | os.PathLike) -> np.ndarray | CompressedPixels:
    """The cache's pixels, whatever its form: `open_pixels(cache.pixels_file)[i]` is image i."""
    path = Path(path)
    if path.name == ENTRIES_FILE:
        return CompressedPixels(path)
    return np.load(path, mmap_mode="r")
