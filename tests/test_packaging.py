"""What the wheel ships: the package, every module of it, and nothing that lives only beside a
checkout (benchmarks, tests, paths into ../shared). The slow test builds and installs it."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from setuptools import find_packages

from benchmarks.wheel_check import PACKAGE, WheelCheckFailed, check_contents

REPO = Path(__file__).resolve().parents[1]
BENCHMARK_IMPORT = re.compile(r"^\s*(from|import)\s+benchmarks\b", re.MULTILINE)


def _packaged() -> list[str]:
    """The packages setuptools puts in the wheel, from pyproject's own find settings."""
    find = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    return find_packages(where=str(REPO), **find["packages"]["find"])


def test_the_wheel_takes_every_package_folder_and_no_benchmark() -> None:
    packaged = set(_packaged())
    assert not {p for p in packaged if p.split(".")[0] != PACKAGE}, packaged
    # a folder of modules without __init__.py would silently be left out of the wheel
    folders = {
        ".".join(p.parent.relative_to(REPO).parts)
        for p in (REPO / PACKAGE).rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert folders == packaged
    assert (REPO / "benchmarks" / "__init__.py").is_file()  # ...while benchmarks/ is a package


def test_the_package_names_no_shared_path_and_imports_no_benchmark() -> None:
    for path in (REPO / PACKAGE).rglob("*"):
        if path.is_file() and path.suffix in (".py", ".yaml", ".json", ".txt"):
            text = path.read_text()
            assert "../shared" not in text, path
            assert not BENCHMARK_IMPORT.search(text), path


def _wheel(tmp_path: Path, files: dict[str, str]) -> Path:
    tmp_path.mkdir(exist_ok=True)
    wheel = tmp_path / "kaggle_style-0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return wheel


def test_wheel_check_refuses_what_a_wheel_must_not_hold(tmp_path: Path) -> None:
    """The check behind `make wheel-check` fails for each thing it looks for."""
    source = tmp_path / "src"
    (source / PACKAGE / "sub").mkdir(parents=True)
    for name in ("__init__.py", "sub/__init__.py", "sub/mod.py"):
        (source / PACKAGE / name).write_text("")
    good = {f"{PACKAGE}/{n}": "" for n in ("__init__.py", "sub/__init__.py", "sub/mod.py")}
    good[f"{PACKAGE}-0.dist-info/METADATA"] = "Name: kaggle-style\n"
    assert len(check_contents(_wheel(tmp_path / "a", good), source)) == 3
    cases = {
        "holds benchmarks": {**good, "benchmarks/bench.py": ""},
        "lacks": {k: v for k, v in good.items() if k != f"{PACKAGE}/sub/mod.py"},
        "name ../shared": {**good, f"{PACKAGE}/sub/mod.py": 'W = "../shared/data/w.pth"\n'},
    }
    for i, (message, files) in enumerate(cases.items()):
        with pytest.raises(WheelCheckFailed, match=re.escape(message)):
            check_contents(_wheel(tmp_path / str(i), files), source)


@pytest.mark.slow
def test_the_wheel_installs_alone_and_its_commands_run() -> None:
    """`make wheel-check`: build, install into a fresh venv (not editable), run the commands."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.wheel_check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert len(lines) == 6 and all(line.startswith("ok  ") for line in lines), lines
    assert "only kaggle_style, no ../shared" in lines[0]
    assert "/venv/lib/" in lines[1]  # imported from the wheel's install, not the checkout
