"""Every kind of bad or odd image is decoded or named, never a crash mid-epoch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from kaggle_style.data.images import BadImageError, build_cache, decode_rgb


def _save(path: Path, image: Image.Image, fmt: str) -> Path:
    image.save(path, format=fmt)
    return path


def test_odd_but_readable_images_become_rgb(tmp_path: Path) -> None:
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8))
    cases = {
        "png_named.jpg": _save(tmp_path / "png_named.jpg", rgb, "PNG"),
        "cmyk.jpg": _save(tmp_path / "cmyk.jpg", rgb.convert("CMYK"), "JPEG"),
        "gray.jpg": _save(tmp_path / "gray.jpg", rgb.convert("L"), "JPEG"),
        "huge.jpg": _save(tmp_path / "huge.jpg", rgb.resize((4000, 3000)), "JPEG"),
    }
    for name, path in cases.items():
        pixels = decode_rgb(path)
        assert pixels.ndim == 3 and pixels.shape[2] == 3 and pixels.dtype == np.uint8, name
    gray = decode_rgb(cases["gray.jpg"])
    assert np.array_equal(gray[..., 0], gray[..., 1])


@pytest.mark.parametrize("kind", ["missing", "empty", "truncated", "tiny", "text"])
def test_unreadable_images_raise_a_message_naming_the_file(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"{kind}.jpg"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        img = Image.new("RGB", (200, 100), (50, 90, 10))
        _save(path, img, "JPEG")
        path.write_bytes(path.read_bytes()[:150])
    elif kind == "tiny":
        _save(path, Image.new("RGB", (4, 4)), "JPEG")
    elif kind == "text":
        path.write_text("not an image")
    with pytest.raises(BadImageError, match=str(path.name)):
        decode_rgb(path)


def test_cache_lists_bad_images_and_keeps_the_good(tmp_path: Path) -> None:
    good = _save(tmp_path / "good.jpg", Image.new("RGB", (64, 48), (10, 200, 30)), "JPEG")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"")
    cache = build_cache([good, bad], 32, tmp_path / "cache", progress=False)
    assert cache.ok.tolist() == [True, False]
    assert "empty" in cache.errors[1]
    listed = pd.read_csv(cache.folder / "bad_images.csv")
    assert len(listed) == 1 and listed["path"].iloc[0].endswith("bad.jpg")
    assert cache.pixels.shape == (2, 32, 32, 3)
