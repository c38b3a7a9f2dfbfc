"""Every kind of bad or odd image is decoded or named, never a crash mid-epoch."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from kaggle_style.data.images import BadImageError, build_cache, decode_rgb, to_uint8


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


# ------------------------------------------------------------------- hostile and deep images


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(path: Path, width: int = 15000, height: int = 15000) -> Path:
    """A real, tiny PNG whose header claims width x height RGB pixels (a decompression bomb)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )
    return path


def test_decompression_bomb_is_a_bad_image_not_a_crash(tmp_path: Path) -> None:
    bomb = bomb_png(tmp_path / "bomb.png")
    assert bomb.stat().st_size < 200
    with pytest.raises(Image.DecompressionBombError):  # what aborted train and predict before
        Image.open(bomb)
    limit = Image.MAX_IMAGE_PIXELS
    with pytest.raises(BadImageError, match=r"bomb\.png.*15000x15000.*max_pixels"):
        decode_rgb(bomb)
    assert limit == Image.MAX_IMAGE_PIXELS  # PIL's own limit is left as it was
    good = _save(tmp_path / "good.jpg", Image.new("RGB", (64, 48), (10, 200, 30)), "JPEG")
    cache = build_cache([good, bomb], 32, tmp_path / "cache", progress=False)
    assert cache.ok.tolist() == [True, False]
    listed = pd.read_csv(cache.folder / "bad_images.csv")
    assert listed["path"].tolist() == [str(bomb)] and "max_pixels" in listed["error"].iloc[0]


@pytest.mark.parametrize("kind", ["zlib", "tiff_offsets", "webp", "bmp_truncated"])
def test_every_decoder_error_names_the_file(tmp_path: Path, kind: str) -> None:
    """Real broken files that make PIL raise from deep inside its decoders."""
    path = tmp_path / f"{kind}.img"
    if kind == "zlib":
        header = struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0)
        path.write_bytes(
            b"\x89PNG\r\n\x1a\n"
            + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", b"not zlib!")
            + _png_chunk(b"IEND", b"")
        )
    elif kind == "tiff_offsets":  # strip offset far past the end of the file
        tags = b"".join(
            struct.pack("<HHII", tag, 4, 1, value)
            for tag, value in ((256, 16), (257, 16), (273, 99999))
        )
        path.write_bytes(b"II*\x00\x08\x00\x00\x00" + struct.pack("<H", 3) + tags + bytes(4))
    elif kind == "webp":
        path.write_bytes(
            b"RIFF" + struct.pack("<I", 30) + b"WEBPVP8 " + struct.pack("<I", 18) + bytes(18)
        )
    else:
        path.write_bytes(
            b"BM"
            + struct.pack("<IHHI", 100, 0, 0, 54)
            + struct.pack("<IiiHHIIiiII", 40, 16, 16, 1, 24, 0, 0, 0, 0, 0, 0)
        )
    with pytest.raises(BadImageError, match=path.name):
        decode_rgb(path)


def test_pixel_limit_is_configurable_and_says_what_to_do(tmp_path: Path) -> None:
    path = _save(tmp_path / "frame.jpg", Image.new("RGB", (100, 80), (90, 90, 90)), "JPEG")
    with pytest.raises(BadImageError, match=r"100x80 = 8,000 pixels.*5,000 \(max_pixels\)"):
        decode_rgb(path, max_pixels=5000)
    assert decode_rgb(path, max_pixels=8000).shape == (80, 100, 3)


def test_sixteen_bit_grey_png_is_scaled_not_white(tmp_path: Path) -> None:
    values = np.linspace(0, 65535, 64 * 48).round().astype(np.uint16).reshape(48, 64)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    with Image.open(path) as raw:
        assert raw.mode == "I;16"  # a real 16-bit PNG
        assert np.asarray(raw.convert("RGB")).mean() > 250  # PIL alone: near white
    pixels = decode_rgb(path)
    expected = np.round(values / 257.0).astype(np.uint8)
    assert np.array_equal(pixels[..., 0], expected)
    assert np.array_equal(pixels[..., 1], expected) and np.array_equal(pixels[..., 2], expected)
    assert 120 < pixels.mean() < 135


def test_sixteen_bit_rgb_and_float_images(tmp_path: Path) -> None:
    import cv2

    rgb16 = np.random.default_rng(1).integers(0, 65536, (24, 32, 3), dtype=np.uint16)
    path = tmp_path / "rgb16.png"
    cv2.imwrite(str(path), rgb16[..., ::-1])  # OpenCV writes BGR
    assert np.abs(decode_rgb(path).astype(int) - rgb16 / 257.0).max() <= 1
    floats = np.linspace(0.0, 1.0, 32 * 24, dtype=np.float32).reshape(24, 32)
    tiff = tmp_path / "float.tif"
    Image.fromarray(floats, mode="F").save(tiff)
    decoded = decode_rgb(tiff)[..., 0]
    assert np.array_equal(decoded, np.round(floats * 255).astype(np.uint8))
    wide = np.linspace(-5.0, 3000.0, 32 * 24, dtype=np.float32).reshape(24, 32)
    assert to_uint8(wide, "F").min() == 0 and to_uint8(wide, "F").max() == 255  # stretched
