"""Camera-trap JPEGs at full size for the checks: rendered once by the demo's renderer."""

from __future__ import annotations

import io
import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from kaggle_style.files import atomic_path, write_json
from kaggle_style.task import CONSERVISION_CLASSES as CLASSES

FRAMES_META = "frames.json"


def _render_jpeg(job: tuple[int, int, int, int]) -> bytes:
    from kaggle_style.demo.generator import make_site, render_frame

    seed, index, width, height = job
    rng = np.random.default_rng([seed, index])
    site = make_site(rng, f"B{index:03d}")
    image, _ = render_frame(rng, site, CLASSES[index % len(CLASSES)], width, height)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def render_jpegs(seed: int, count: int, width: int, height: int) -> list[bytes]:
    """`count` distinct demo-style camera-trap JPEGs, rendered in parallel."""
    jobs = [(seed, i, width, height) for i in range(count)]
    workers = min(os.cpu_count() or 1, len(jobs) // 4)
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            return list(pool.map(_render_jpeg, jobs))
    return [_render_jpeg(job) for job in jobs]


def make_frames(cfg) -> list[Path]:
    """`n_images` camera-trap JPEGs at full size, rendered once and reused by later runs.

    Rendering a 960x540 frame costs about ten decodes, so `unique_frames` are rendered (in
    parallel) and written in turn as separate files: each file is still decoded on its own.
    """
    folder = (
        Path(cfg.work_dir) / f"frames_{cfg.frame_width}x{cfg.frame_height}"
        f"_u{cfg.unique_frames}_s{cfg.seed}"
    )
    paths = [folder / f"frame_{i:05d}.jpg" for i in range(cfg.n_images)]
    meta_file = folder / FRAMES_META
    if meta_file.exists() and json.loads(meta_file.read_text())["n"] >= cfg.n_images:
        return paths
    frames = render_jpegs(cfg.seed, cfg.unique_frames, cfg.frame_width, cfg.frame_height)
    folder.mkdir(parents=True, exist_ok=True)
    for i, path in enumerate(paths):
        with atomic_path(path) as tmp:
            tmp.write_bytes(frames[i % len(frames)])
    write_json(meta_file, {"n": cfg.n_images, "unique": len(frames)})
    return paths
