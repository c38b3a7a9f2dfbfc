"""tests/conftest.py's skips: a test that needs ../shared/data is skipped with the reason where
the folder is missing, and fails under CI=true (CI always provides it, never skips silently);
a `gpu` test is skipped with the reason where torch sees no CUDA GPU. Each case runs pytest on
a probe checkout holding a copy of the real conftest.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

REPO = Path(__file__).resolve().parents[1]
PROBES = """
import pytest


def test_reads_the_real_data(shared_data):
    assert (shared_data / "README.md").exists()


def test_needs_no_data():
    pass


@pytest.mark.gpu
def test_needs_a_gpu():
    import torch

    assert torch.cuda.is_available()
"""
OWN_FIXTURE = """
import pytest


@pytest.fixture(scope="module")
def shared_data():
    pytest.fail("the module's own shared_data fixture ran without the data")


def test_with_a_modules_own_fixture(shared_data):
    pass
"""


def _probe(
    tmp_path: Path, with_data: bool, ci: bool, cuda: bool | None = None
) -> dict[str, tuple[str, str]]:
    """Each probe's (outcome, message) from pytest run in `tmp_path/checkout`, whose
    ../shared/data exists or not: passed, skipped, error (in setup) or failed. With `cuda`, the
    gpu probe runs over a stand-in torch that sees a CUDA GPU or not (the real one takes
    seconds to import and answers for this machine only); without, it is left out."""
    tests = tmp_path / "checkout" / "tests"
    tests.mkdir(parents=True)
    shutil.copy(REPO / "tests" / "conftest.py", tests)
    (tests / "test_probes.py").write_text(PROBES)
    (tests / "test_own_fixture.py").write_text(OWN_FIXTURE)
    if with_data:
        (tmp_path / "shared" / "data").mkdir(parents=True)
        (tmp_path / "shared" / "data" / "README.md").write_text("probe data\n")
    env = {k: v for k, v in os.environ.items() if k not in {"CI", "PYTEST_XDIST_WORKER"}}
    env["PYTHONPATH"] = str(REPO)
    if cuda is not None:
        stand_in = tmp_path / "stand_in" / "torch"
        stand_in.mkdir(parents=True)
        (stand_in / "__init__.py").write_text(
            f"class cuda:\n    @staticmethod\n    def is_available():\n        return {cuda}\n"
        )
        env["PYTHONPATH"] = f"{stand_in.parent}{os.pathsep}{REPO}"
    select = "not gpu" if cuda is None else "gpu"
    if ci:
        env["CI"] = "true"
    report = tmp_path / "report.xml"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-m",
            select,
            "--junitxml",
            str(report),
        ],
        cwd=tests.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    outcomes = {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        found = [child for child in case if child.tag in {"skipped", "error", "failure"}]
        outcome = {"failure": "failed"}.get(found[0].tag, found[0].tag) if found else "passed"
        outcomes[case.get("name", "")] = (outcome, found[0].get("message", "") if found else "")
    return outcomes


MISSING = "the real test data is missing: expected {}"
NEED_DATA = ("test_reads_the_real_data", "test_with_a_modules_own_fixture")


def test_without_the_real_data_its_tests_are_skipped_with_the_reason(tmp_path: Path) -> None:
    """Both the conftest's fixture and a module's own `shared_data` fixture: skipped before the
    module's fixture could fail; a test that needs no data still runs."""
    outcomes = _probe(tmp_path, with_data=False, ci=False)
    missing = MISSING.format(tmp_path / "shared" / "data")
    for name in NEED_DATA:
        outcome, message = outcomes[name]
        assert outcome == "skipped" and missing in message, (name, outcomes[name])
    assert outcomes["test_needs_no_data"] == ("passed", "")


def test_without_the_real_data_under_ci_its_tests_fail(tmp_path: Path) -> None:
    outcomes = _probe(tmp_path, with_data=False, ci=True)
    missing = MISSING.format(tmp_path / "shared" / "data")
    for name in NEED_DATA:
        outcome, message = outcomes[name]
        assert outcome == "error" and missing in message, (name, outcomes[name])
        assert "CI always provides it" in message
    assert outcomes["test_needs_no_data"] == ("passed", "")


def test_with_the_real_data_its_tests_run(tmp_path: Path) -> None:
    outcomes = _probe(tmp_path, with_data=True, ci=True)
    assert outcomes["test_reads_the_real_data"] == ("passed", "")
    outcome, message = outcomes["test_with_a_modules_own_fixture"]  # reached its own fixture
    assert outcome == "error" and "the module's own shared_data fixture ran" in message


@pytest.mark.parametrize("cuda", [False, True], ids=["no CUDA GPU", "a CUDA GPU"])
def test_a_gpu_test_is_skipped_with_the_reason_exactly_where_torch_sees_no_cuda_gpu(
    tmp_path: Path, cuda: bool
) -> None:
    outcome = _probe(tmp_path, with_data=True, ci=True, cuda=cuda)["test_needs_a_gpu"]
    expected = ("passed", "") if cuda else ("skipped", "needs a CUDA GPU (torch sees none here)")
    assert outcome == expected
