"""The HTML report in a real browser (headless Chromium): no console error, every figure
loaded and decoded, and a screenshot of the first screen (kept under the test's tmp folder)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from browser import check_page, chromium
from test_report import report_inputs  # noqa: F401  (the fixture: fake runs + a real ensemble)

from kaggle_style.cli import main

pytestmark = pytest.mark.slow


def test_report_opens_in_headless_chromium(
    report_inputs: dict[str, Path],  # noqa: F811
    tiny_data: Path,
    tmp_path: Path,
) -> None:
    if chromium() is None:
        if os.environ.get("CI") == "true":
            pytest.fail(
                "chromium is missing under CI: .ci/run installs it (apt-get install chromium)"
            )
        pytest.skip("no chromium here (apt-get install chromium); CI installs it")
    out = tmp_path / "report"
    runs = [str(report_inputs[k]) for k in ("a", "b", "ens")]
    assert (
        main(
            [
                "report",
                *runs,
                "--data",
                str(tiny_data),
                "--out",
                str(out),
                "--crops",
                str(report_inputs["manifest"]),
                "--meta",
                str(report_inputs["meta"]),
                "--gallery",
                "5",
            ]
        )
        == 0
    )
    shot = Path(os.environ.get("REPORT_SCREENSHOT", tmp_path / "first_screen.png"))
    check = check_page(out / "index.html", shot)
    assert check.errors == []
    sources = {img["src"] for img in check.images}
    assert {"per_class_accuracy.png", "confusion_0.png", "reliability_0.png"} <= sources
    broken = [
        img["src"]
        for img in check.images
        if not (img["complete"] and img["width"] > 0 and img["height"] > 0)
    ]
    assert broken == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
