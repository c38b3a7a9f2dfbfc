"""The layers of ARCHITECTURE.md hold: import-linter's contract (pyproject.toml) is kept by the
package, and breaks on a lower layer importing a higher one or on a module left out of it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    command = Path(sys.executable).with_name("lint-imports")
    if not command.exists():
        pytest.fail("lint-imports is missing: install the dev extra (pip install '.[dev]')")
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(command), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )


def _copy(tmp_path: Path) -> Path:
    """The package and its contract, in a folder of their own."""
    shutil.copytree(
        REPO / "kaggle_style",
        tmp_path / "kaggle_style",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    return tmp_path


def test_the_package_keeps_its_layers() -> None:
    out = _lint(REPO)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "1 kept, 0 broken" in out.stdout


def test_a_lower_layer_importing_a_higher_one_breaks_the_contract(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    (root / "kaggle_style" / "data" / "shortcut.py").write_text(
        "from kaggle_style.training import run  # data reaching up into training\n"
    )
    out = _lint(root)
    assert out.returncode != 0
    assert "kaggle_style.data is not allowed to import kaggle_style.training" in out.stdout
    assert "kaggle_style.data.shortcut -> kaggle_style.training.run" in out.stdout


def test_a_module_outside_the_drawing_breaks_the_contract(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    (root / "kaggle_style" / "helpers.py").write_text('"""Not placed in any layer."""\n')
    out = _lint(root)
    assert out.returncode != 0 and "kaggle_style.helpers" in out.stdout
