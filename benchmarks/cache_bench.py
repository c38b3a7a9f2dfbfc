"""What each cache form costs: disk bytes per image and images/s per loader worker.

`python -m benchmarks.cache_bench` caches real camera-trap frames (the shared data's
tai_images/ and ena24_small/) in every form at every recipe's cache size (configs/*.yaml), then
reads and augments them the way one DataLoader worker does (one thread, the recipe's own
augmentation). It prints one table and the sizing table (cache GB per 1,000 images per
recipe), and with --json one JSON line.
Speeds are the best of several short runs taken in turn, so that other jobs on a shared machine
bias every form alike.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import run_main, shared_data
from kaggle_style.config import read_yaml
from kaggle_style.data.cache_forms import open_pixels
from kaggle_style.data.images import build_cache, cache_size_for
from kaggle_style.errors import UserError

REPO = Path(__file__).resolve().parents[1]
IMAGE_DIRS = ("tai_images", "ena24_small")  # real frames: 960x540 Conser-vision, ENA24 up to 5 MP
# (label, form, cache scale or None for the recipe's own): the default form first: the baseline
FORMS: tuple[tuple[str, str, float | None], ...] = (
    ("uint8", "uint8", None),
    ("uint8@1.0", "uint8", 1.0),
    ("jpeg90", "jpeg", None),
    ("webp90", "webp", None),
    ("png", "png", None),
)
IMAGENET = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}


@dataclass(frozen=True)
class Recipe:
    name: str
    size: int  # the model's input side
    views: int  # 2 for crop+full (two cache entries per image), else 1
    augment: str
    scale: float


def recipes(config_dir: Path) -> list[Recipe]:
    """Every training recipe in configs/ with an image_size (the ones that size a real cache)."""
    out = []
    for path in sorted(config_dir.glob("*.yaml")):
        cfg = read_yaml(path)
        if "backbone" in cfg and cfg.get("image_size"):
            out.append(
                Recipe(
                    path.stem,
                    int(cfg["image_size"]),
                    2 if cfg.get("view") == "crop+full" else 1,
                    str(cfg.get("augment", "light")),
                    float(cfg.get("cache_scale", 1.15)),
                )
            )
    return out


def source_images(shared: Path) -> list[str]:
    paths = [str(p) for d in IMAGE_DIRS for p in sorted((shared / d).glob("*.jpg"))]
    if not paths:
        raise UserError(
            f"{shared}: no real frames in {' or '.join(IMAGE_DIRS)}; --shared (or "
            "$KAGGLE_STYLE_SHARED_DATA) must name the shared data folder"
        )
    return paths


def _reader(pixels_file: Path, size: int, augment: str | None):
    """One worker's read (+ the recipe's training augmentation), as a function of an index."""
    from kaggle_style.data.transforms import train_transform

    pixels = open_pixels(pixels_file)
    if augment is None:
        return lambda i: np.asarray(pixels[i])
    transform = train_transform({"input_size": (3, size, size), **IMAGENET}, augment)
    return lambda i: transform(image=np.asarray(pixels[i]))


def _best_rates(readers: dict[str, Any], n: int, seconds: float, rounds: int) -> dict[str, float]:
    """Items/s of each reader, best of `rounds` short runs taken in turn: on a shared machine the
    other jobs only ever slow a run down, so the best run is the closest to the machine's own."""
    best = dict.fromkeys(readers, 0.0)
    for read in readers.values():
        read(0)  # warm-up: codec tables, first page-in
    for _ in range(rounds):
        for name, read in readers.items():
            done, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds / rounds:
                read(done % n)
                done += 1
            best[name] = max(best[name], done / (time.perf_counter() - start))
    return best


def measure(
    shared: Path, config_dir: Path, seconds: float = 2.0, rounds: int = 5
) -> dict[str, Any]:
    """bytes/image and images/s per worker for every (recipe, form); see the module docstring."""
    import cv2
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(0)  # a loader worker's setting: the workers are the parallelism
    paths = source_images(shared)
    found = recipes(config_dir)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        measured: dict[tuple[int, float, str], dict[str, Any]] = {}
        for recipe in found:
            combo = (recipe.size, recipe.scale, recipe.augment)
            if combo not in measured:
                caches = {
                    label: build_cache(
                        paths,
                        cache_size_for(recipe.size, recipe.scale if scale is None else scale),
                        tmp,
                        progress=False,
                        form=form,
                    )
                    for label, form, scale in FORMS
                }
                rates = _best_rates(
                    {
                        label: _reader(c.pixels_file, recipe.size, recipe.augment)
                        for label, c in caches.items()
                    },
                    len(paths),
                    seconds,
                    rounds,
                )
                reads = _best_rates(
                    {
                        label: _reader(c.pixels_file, recipe.size, None)
                        for label, c in caches.items()
                    },
                    len(paths),
                    seconds / 2,
                    rounds,
                )
                measured[combo] = {
                    label: (c, rates[label], reads[label]) for label, c in caches.items()
                }
            for label, (cache, rate, read) in measured[combo].items():
                files = [cache.pixels_file] + (
                    [] if cache.pixels_file.suffix == ".npy" else [cache.folder / "offsets.npy"]
                )
                per_image = sum(f.stat().st_size for f in files) / len(paths)
                rows.append(
                    {
                        "recipe": recipe.name,
                        "size": recipe.size,
                        "views": recipe.views,
                        "augment": recipe.augment,
                        "form": label,
                        "cache_side": cache.size,
                        "bytes_per_image": round(per_image),
                        "gb_per_1000_images": round(per_image * recipe.views / 1e6, 3),
                        "read_ms": round(1000 / read, 3),
                        "images_per_s_per_worker": round(rate, 1),
                    }
                )
    base = {(r["recipe"]): r for r in rows if r["form"] == "uint8"}
    for row in rows:
        ref = base[row["recipe"]]
        row["bytes_vs_uint8"] = round(row["bytes_per_image"] / ref["bytes_per_image"], 3)
        row["speed_vs_uint8"] = round(
            row["images_per_s_per_worker"] / ref["images_per_s_per_worker"], 3
        )
    return {
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cpus",
        "date": time.strftime("%Y-%m-%d"),
        "images": len(paths),
        "rows": rows,
    }


def print_table(result: dict[str, Any], n_images: int = 20952) -> None:
    print(
        f"cache forms on {result['images']} real frames ({result['machine']}, "
        f"{result['date']}); one worker thread, read + the recipe's augmentation"
    )
    print(
        f"{'recipe':<20}{'form':<11}{'side':>5}{'kB/img':>9}{'x uint8':>8}{'read ms':>8}"
        f"{'img/s':>8}{'x uint8':>8}{'GB/1k':>8}{f'GB/{n_images}':>10}"
    )
    for r in result["rows"]:
        print(
            f"{r['recipe']:<20}{r['form']:<11}{r['cache_side']:>5}"
            f"{r['bytes_per_image'] / 1000:>9.1f}{r['bytes_vs_uint8']:>8.3f}{r['read_ms']:>8.2f}"
            f"{r['images_per_s_per_worker']:>8.1f}{r['speed_vs_uint8']:>8.2f}"
            f"{r['gb_per_1000_images']:>8.2f}{r['gb_per_1000_images'] * n_images / 1000:>10.1f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.cache_bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--shared", help="the shared real-data folder (default: $KAGGLE_STYLE_SHARED_DATA)"
    )
    parser.add_argument("--configs", type=Path, default=REPO / "configs")
    parser.add_argument(
        "--seconds",
        type=float,
        default=2.0,
        help="per form and recipe, split into --rounds runs (2.0)",
    )
    parser.add_argument("--rounds", type=int, default=5, help="best of N short runs (5)")
    parser.add_argument("--json", action="store_true", help="also print one JSON line")
    args = parser.parse_args(argv)
    return run_main(parser.prog, lambda: run(args))


def run(args: argparse.Namespace) -> int:
    result = measure(shared_data(args.shared), args.configs, args.seconds, args.rounds)
    print_table(result)
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
