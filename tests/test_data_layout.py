"""kaggle_style.data.layout (`check-data`): a folder's layout reported file by file, its images
counted, every problem listed and the command's error one line."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd

from kaggle_style.data.layout import check_layout
from kaggle_style.task import SUBMISSION_FORMAT, TEST_FEATURES, TRAIN_FEATURES

KS = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "kaggle-style"


def test_check_data_reports_each_file_and_the_images(tiny_data: Path) -> None:
    report = check_layout(tiny_data)
    assert report.problems == []
    text = report.format()
    n_train = len(pd.read_csv(tiny_data / TRAIN_FEATURES))
    n_test = len(pd.read_csv(tiny_data / TEST_FEATURES))
    assert f"{n_train} of {n_train} image files found" in text
    assert f"{n_test} of {n_test} image files found" in text
    assert text.endswith("layout ok")


def test_check_data_names_missing_files_images_and_tables(data_copy: Path, tiny_data: Path):
    (data_copy / SUBMISSION_FORMAT).unlink()
    report = check_layout(data_copy)  # data_copy holds no images
    assert report.problems[0] == f"{SUBMISSION_FORMAT} is missing"
    assert any(p.startswith("train_features/: no image files (0 of") for p in report.problems)
    shutil.copytree(tiny_data / "train_features", data_copy / "train_features", dirs_exist_ok=True)
    next((data_copy / "train_features").iterdir()).unlink()
    report = check_layout(data_copy)
    assert any("train_features/: 1 of" in p and "missing" in p for p in report.problems)
    csv_only = check_layout(data_copy, check_images=False)
    assert csv_only.problems == [f"{SUBMISSION_FORMAT} is missing"]


def _check_data_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(KS), "check-data", *args],
        capture_output=True,
        text=True,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )


def test_check_data_cli_on_the_real_csvs_without_images(shared_data: Path) -> None:
    folder = shared_data / "conservision"
    result = _check_data_cli(str(folder))
    assert result.returncode == 2, result.stderr
    assert "16,488 rows, 148 sites" in result.stdout
    assert "4,464 rows, 51 sites, 0 of them also in train_features.csv" in result.stdout
    assert "0 of 16,488 image files found (no train_features/ folder)" in result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("kaggle-style check-data: error: "), lines
    assert "no image files" in lines[0] and "--csv-only" in lines[0]
    csv_only = _check_data_cli(str(folder), "--csv-only")
    assert csv_only.returncode == 0 and csv_only.stderr == ""
    assert "images not checked (--csv-only)" in csv_only.stdout


def test_check_data_cli_on_a_fake_layout(tmp_path: Path) -> None:
    (tmp_path / TRAIN_FEATURES).write_text("id,filepath\nZJ0,train_features/ZJ0.jpg\n")
    result = _check_data_cli(str(tmp_path), "--csv-only")
    assert result.returncode == 2
    assert "missing column(s) site" in result.stdout
    assert re.search(r"train_labels\.csv +BAD +missing", result.stdout), result.stdout
    line = result.stderr.strip()
    assert line.startswith(f"kaggle-style check-data: error: {tmp_path}: train_features.csv: ")
    assert "3 more problem(s) listed above" in line
    result = _check_data_cli(str(tmp_path / "nowhere"))
    assert result.returncode == 2 and "folder not found" in result.stderr
