"""Shared fixtures: the real data beside the checkout, and tiny generated datasets."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from kaggle_style.constants import SHARED_DATA_ENV

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
# The tests' stages and benchmarks find the detector weights there, as `make` passes it.
os.environ.setdefault(SHARED_DATA_ENV, str(SHARED_DATA))


def skip_without_shared_data() -> None:
    """A test that needs ../shared/data is skipped, saying why, where the folder is missing;
    under CI (CI=true) it fails instead, since CI always provides it and never skips silently."""
    if (SHARED_DATA / "README.md").exists():
        return
    missing = f"the real test data is missing: expected {SHARED_DATA} beside the checkout"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{missing} (CI always provides it)")
    pytest.skip(f"{missing} (put it there to run this test)")


def cuda_missing() -> str:
    """Why a `gpu` test cannot run here ("" when a CUDA GPU is visible)."""
    import torch

    return "" if torch.cuda.is_available() else "needs a CUDA GPU (torch sees none here)"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before any fixture: `gpu` tests skip without a CUDA GPU; tests that take the real data
    (a `shared_data` fixture, this file's or a module's own) skip without it."""
    if item.get_closest_marker("gpu") is not None and (reason := cuda_missing()):
        pytest.skip(reason)
    if "shared_data" in getattr(item, "fixturenames", ()):
        skip_without_shared_data()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (real Conser-vision CSVs, images, weights); skipped, saying why, if absent
    (a failure under CI)."""
    skip_without_shared_data()
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny demo dataset (DrivenData layout, 12+ sites) shared by the session's tests."""
    from kaggle_style.demo.generator import generate_demo_data

    out = tmp_path_factory.mktemp("tiny") / "data"
    generate_demo_data(out, seed=1, n_train=96, n_test=24, width=128, height=72)
    return out


@pytest.fixture
def data_copy(tiny_data: Path, tmp_path: Path) -> Path:
    """The tiny dataset's tables (no images) in a folder a test may edit."""
    out = tmp_path / "data"
    shutil.copytree(tiny_data, out, ignore=shutil.ignore_patterns("*.jpg"))
    return out


@pytest.fixture(scope="session")
def tiny_folds(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from kaggle_style.data.folds import make_folds
    from kaggle_style.data.tables import load_competition_data
    from kaggle_style.files import write_csv

    out = tmp_path_factory.mktemp("folds") / "folds.csv"
    write_csv(out, make_folds(load_competition_data(tiny_data).train, n_splits=3, seed=0))
    return out


# Under pytest-xdist (`make test`) each worker process is one of the CI's two cores: its torch,
# and the commands its tests start, get one thread each instead of fighting over both.
XDIST_WORKER = "PYTEST_XDIST_WORKER" in os.environ
THREADS = "1" if XDIST_WORKER else os.environ.get("OMP_NUM_THREADS", "2")


def pytest_configure(config: pytest.Config) -> None:
    if XDIST_WORKER:
        import torch

        torch.set_num_threads(1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`heavy` tests first, so the workers share them out and no long one runs alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("heavy") is None)


@pytest.fixture(autouse=True)
def _quiet_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two CI cores: keep libraries from oversubscribing them."""
    monkeypatch.setenv("OMP_NUM_THREADS", THREADS)


@pytest.fixture
def synthetic(tmp_path: Path) -> dict:
    """Three synthetic model runs on disk (tests/ensemble_world.py), for the ensemble tests."""
    from ensemble_world import write_synthetic

    return write_synthetic(tmp_path)


@pytest.fixture
def world_files(tmp_path: Path) -> tuple:
    """A generated ensemble world written as run folders (tests/ensemble_world.py)."""
    from ensemble_world import written_world

    return written_world(tmp_path)
