"""The image cache's disk budget: a real full disk, a file-size limit, a killed build's leftovers,
two processes at once, the compressed forms, and `clean-cache` against the caches `train` makes."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kaggle_style.data import cache_admin
from kaggle_style.data.cache_forms import open_pixels
from kaggle_style.data.images import build_cache, cache_key
from kaggle_style.errors import UserError
from kaggle_style.files import DiskFullError, free_bytes

REPO = Path(__file__).resolve().parents[1]


def _noise_images(folder: Path, n: int, size: tuple[int, int] = (160, 120)) -> list[Path]:
    """Incompressible JPEGs: their cache entries are as large as a form can make them."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / f"{i:03d}.jpg"
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(
            path, quality=95
        )
        paths.append(path)
    return paths


def _leftovers(folder: Path) -> list[str]:
    """Files a failed build left: nothing but the lock file may remain."""
    return sorted(p.name for p in folder.rglob("*") if p.is_file() and p.name != ".build.lock")


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 2 MB tmpfs (we run as root in CI); skipped with the reason where mount is refused."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(
            f"cannot mount a 2 MB tmpfs here ({done.stderr.strip() or done.returncode}); "
            "test_file_size_limit_is_a_disk_error covers the write path"
        )
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_room_is_checked_before_the_build(tmp_path: Path, small_disk: Path) -> None:
    paths = _noise_images(tmp_path / "img", 40)
    needed = 40 * 160 * 160 * 3  # 3 MB of uint8 pixels on a 2 MB disk
    start = time.perf_counter()
    with pytest.raises(DiskFullError) as err:
        build_cache(paths, 160, small_disk / "cache", progress=False)
    message = str(err.value)
    assert str(small_disk / "cache") in message and f"({needed + 128} bytes)" in message
    free = free_bytes(small_disk)
    assert f"({free} bytes) free" in message and "clean-cache" in message
    assert time.perf_counter() - start < 5  # refused before decoding 40 images
    assert _leftovers(small_disk) == []


@pytest.mark.parametrize("form", ["uint8", "jpeg"])
def test_full_disk_mid_write_is_one_error_and_no_temp_file(
    tmp_path: Path, small_disk: Path, monkeypatch: pytest.MonkeyPatch, form: str
) -> None:
    """The estimate passes (another writer fills the disk later, or compression does worse
    than budgeted): the write itself hits ENOSPC. np.memmap wrote here with SIGBUS."""
    monkeypatch.setattr(cache_admin, "check_free_space", lambda *a, **k: None)
    paths = _noise_images(tmp_path / "img", 100)  # JPEG entries at 256 px: ~50 kB, 5 MB
    with pytest.raises(DiskFullError, match=r"disk full while writing the .* image cache") as err:
        build_cache(paths, 256, small_disk / "cache", progress=False, form=form)
    assert str(small_disk / "cache") in str(err.value)
    assert "no temporary file left behind" in str(err.value)
    assert _leftovers(small_disk) == []
    assert free_bytes(small_disk) > 1_900_000  # the space is given back
    # A later run with room (fewer images) works in the same folder.
    cache = build_cache(paths[:5], 64, small_disk / "cache", progress=False, form=form)
    assert cache.ok.all() and np.asarray(cache.pixels[4]).shape == (64, 64, 3)


def test_file_size_limit_is_a_disk_error(tmp_path: Path) -> None:
    """RLIMIT_FSIZE in a real subprocess: EFBIG becomes the same one-line error."""
    paths = _noise_images(tmp_path / "img", 12)
    script = textwrap.dedent(f"""
        import resource, sys
        from kaggle_style.files import DiskFullError
        from kaggle_style.data.images import build_cache
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
        try:
            build_cache({[str(p) for p in paths]!r}, 160, {str(tmp_path / "cache")!r},
                        progress=False)
        except DiskFullError as err:
            print(err)
            sys.exit(2)
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert "disk full while writing the uint8 image cache" in done.stdout
    assert "File too large" in done.stdout
    assert _leftovers(tmp_path / "cache") == []


def test_a_dead_builds_temp_files_are_cleaned(tmp_path: Path) -> None:
    paths = _noise_images(tmp_path / "img", 3)
    folder = tmp_path / "cache" / cache_key(paths, 32)
    folder.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = os.getppid()
    host = cache_admin.temp_path(folder / "x").name.split(".")[2]
    stale = folder / f".pixels.npy.{host}.{dead.pid}.tmp"
    live = folder / f".pixels.npy.{host}.{alive}.tmp"
    legacy = folder / ".pixels.npy.k3j4h5.tmp"  # mkstemp's name, as older versions wrote
    fresh_legacy = folder / ".ok.npy.abcdef.tmp"
    for path in (stale, live, legacy, fresh_legacy):
        path.write_bytes(b"x" * 1000)
    old = time.time() - 2 * cache_admin.STALE_AFTER_S
    os.utime(legacy, (old, old))
    assert cache_admin.stale_temps(folder) == sorted([stale, legacy])
    cache = build_cache(paths, 32, tmp_path / "cache", progress=False)
    assert cache.folder == folder and cache.ok.all()
    assert not stale.exists() and not legacy.exists()
    assert live.exists() and fresh_legacy.exists()  # a live writer's files are not ours to take


def test_two_processes_build_one_cache_once(tmp_path: Path) -> None:
    paths = [str(p) for p in _noise_images(tmp_path / "img", 80, (96, 64))]
    log = tmp_path / "builds.log"
    script = textwrap.dedent(f"""
        import os
        from kaggle_style.data import images
        original = images._write_pixels
        def counted(*args, **kwargs):
            with open({str(log)!r}, "a") as handle:
                handle.write(f"{{os.getpid()}}\\n")
            return original(*args, **kwargs)
        images._write_pixels = counted
        cache = images.build_cache({paths!r}, 48, {str(tmp_path / "cache")!r}, progress=False)
        print(cache.folder, int(cache.ok.sum()), int(cache.pixels[7].sum()))
    """)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=180)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert len(log.read_text().split()) == 1  # decoded once; the other process waited
    assert outputs[0] == outputs[1] and outputs[0].split()[1] == "80"


def test_compressed_forms_read_back(tmp_path: Path, shared_data: Path) -> None:
    """png is lossless; jpeg/webp at quality 90 stay within ~2 grey levels on a real frame."""
    good = shared_data / "tai_images" / "ZJ000268.jpg"
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    reference = build_cache([good, bad], 64, tmp_path / "cache", progress=False)
    keys = {reference.folder.name}
    for form, tolerance in (("png", 0.0), ("jpeg", 3.0), ("webp", 3.0)):
        cache = build_cache([good, bad], 64, tmp_path / "cache", progress=False, form=form)
        keys.add(cache.folder.name)
        assert cache.ok.tolist() == [True, False] and cache.size == 64
        assert cache.pixels_file.name == "entries.bin"
        pixels = open_pixels(cache.pixels_file)
        assert pixels.shape == (2, 64, 64, 3) and pixels[0].dtype == np.uint8
        diff = np.abs(pixels[0].astype(int) - reference.pixels[0].astype(int)).mean()
        assert diff <= tolerance, form
        assert not pixels[1].any()  # a bad image reads as zeros, as in the uint8 form
        assert json.loads((cache.folder / "meta.json").read_text())["form"] == form
    assert len(keys) == 4  # each form its own cache


def test_clean_cache_keeps_what_train_uses(
    tiny_data: Path, tiny_folds: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The keys clean-cache derives from a config are the folders `train` really made."""
    from kaggle_style.config import resolve_config
    from kaggle_style.stages import clean_cache
    from kaggle_style.training.config import TrainConfig
    from kaggle_style.training.data import prepare_data

    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "tiny.yaml").write_text((REPO / "configs" / "tiny-cpu.yaml").read_text())
    (configs / "ensemble.yaml").write_text("temperature: true\n")  # not a recipe: ignored
    cache_dir = tmp_path / "cache"
    cfg = resolve_config(
        TrainConfig,
        configs / "tiny.yaml",
        {},
        data=str(tiny_data),
        folds_file=str(tiny_folds),
        cache_dir=str(cache_dir),
        progress=False,
    )
    prep = prepare_data(cfg)
    used = {prep.train_cache.folder, prep.test_cache.folder}
    unused = build_cache([prep.train_samples.paths[0]], 20, cache_dir, progress=False).folder
    args = argparse.Namespace(
        configs=[configs],
        data=str(tiny_data),
        crops_manifest=None,
        cache_dir=str(cache_dir),
        overrides=[],
        yes=False,
    )
    assert clean_cache.run(args) == 0
    out = capsys.readouterr().out
    assert f"remove  {unused}" in out and "dry run: would free" in out
    assert all(f"keep    {folder}" in out for folder in used)
    assert unused.is_dir()  # a dry run deletes nothing
    with pytest.raises(UserError, match="data folder not found"):  # a mistyped DATA
        clean_cache.run(
            argparse.Namespace(**{**vars(args), "data": str(tmp_path / "typo"), "yes": True})
        )
    assert unused.is_dir() and all(folder.is_dir() for folder in used)  # ...deletes nothing
    assert clean_cache.run(argparse.Namespace(**{**vars(args), "yes": True})) == 0
    assert not unused.exists() and all(folder.is_dir() for folder in used)


def test_cache_bench_measures_every_form(tmp_path: Path, shared_data: Path) -> None:
    """The benchmark's table in one run: bytes and speed per form against today's uint8."""
    from benchmarks import cache_bench

    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "small.yaml").write_text(
        "backbone: resnet18\nimage_size: 32\nview: crop+full\naugment: medium\n"
    )
    (configs / "ensemble.yaml").write_text("temperature: true\n")
    result = cache_bench.measure(shared_data, configs, seconds=0.05, rounds=1)
    rows = {r["form"]: r for r in result["rows"]}
    assert set(rows) == {label for label, _, _ in cache_bench.FORMS}
    header = 128 / result["images"]  # the .npy header, shared by the images
    assert rows["uint8"]["bytes_per_image"] == round(37 * 37 * 3 + header)
    assert rows["uint8"]["cache_side"] == 37  # ceil(1.15 * 32)
    assert rows["uint8@1.0"]["bytes_per_image"] == round(32 * 32 * 3 + header)
    assert rows["jpeg90"]["bytes_vs_uint8"] < 0.5 and rows["png"]["bytes_vs_uint8"] < 1.0
    assert rows["uint8"]["gb_per_1000_images"] == pytest.approx(2 * 37 * 37 * 3 / 1e6, abs=1e-3)
    assert all(r["images_per_s_per_worker"] > 0 and r["read_ms"] > 0 for r in rows.values())
