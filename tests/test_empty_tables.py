"""Tables that hold only their header: every reader that needs rows refuses them, naming the file,
and `folds` refuses fewer groups than folds, naming both numbers; nothing is written."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kaggle_style.cli import main
from kaggle_style.constants import ID_COL
from kaggle_style.data.meta_file import META_COLUMNS, read_meta
from kaggle_style.data.tables import read_features, read_folds, read_labels, read_table
from kaggle_style.errors import UserError
from kaggle_style.prediction_files import make_frame, write_predictions
from kaggle_style.task import CONSERVISION_CLASSES as CLASSES
from kaggle_style.task import SUBMISSION_FORMAT, TEST_FEATURES, TRAIN_FEATURES, TRAIN_LABELS


def _header_only(path: Path) -> Path:
    path.write_text(path.read_text().splitlines()[0] + "\n")
    return path


def _one_line(capsys: pytest.CaptureFixture[str], *words: str) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def test_check_data_refuses_training_tables_that_hold_only_headers(
    tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    _header_only(data / TRAIN_FEATURES)
    _header_only(data / TRAIN_LABELS)
    assert main(["check-data", str(data), "--csv-only"]) == 2
    report = capsys.readouterr()
    assert f"{TRAIN_FEATURES}: holds a header but no data rows" in report.err
    assert "holds a header but no data rows" in report.out


def read_format(path: Path) -> pd.DataFrame:
    return read_table(path, (ID_COL, *CLASSES))  # what `submit` and `check-data` read it with


READERS: dict[str, tuple[str, Callable[[Path], object]]] = {
    "train features": (TRAIN_FEATURES, read_features),
    "test features": (TEST_FEATURES, read_features),
    "labels": (TRAIN_LABELS, read_labels),
    "submission format": (SUBMISSION_FORMAT, read_format),
}


@pytest.mark.parametrize("table", list(READERS))
def test_every_table_reader_refuses_a_table_without_rows_naming_the_file(
    table: str, tiny_data: Path, tmp_path: Path
) -> None:
    name, reader = READERS[table]
    path = _header_only(Path(shutil.copy(tiny_data / name, tmp_path / name)))
    with pytest.raises(UserError, match="holds a header but no data rows") as err:
        reader(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_submit_with_a_format_file_without_rows_is_one_line_and_writes_nothing(
    tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = pd.read_csv(tiny_data / TEST_FEATURES, dtype=str)[ID_COL].tolist()
    predictions = tmp_path / "test.csv"
    write_predictions(
        predictions, make_frame(ids, np.full((len(ids), len(CLASSES)), 1 / 8), classes=CLASSES)
    )
    fmt = _header_only(Path(shutil.copy(tiny_data / SUBMISSION_FORMAT, tmp_path / "format.csv")))
    out = tmp_path / "submissions" / "sub.csv"
    argv = ["submit", "--predictions", str(predictions), "--format", str(fmt), "--out", str(out)]
    assert main(argv) == 2
    _one_line(capsys, f"{fmt}: holds a header but no data rows")
    assert not out.parent.exists()


def test_a_folds_file_without_rows_is_refused_naming_the_file(
    tiny_folds: Path, tmp_path: Path
) -> None:
    path = _header_only(Path(shutil.copy(tiny_folds, tmp_path / "folds.csv")))
    with pytest.raises(UserError, match=f"{path}: holds a header but no data rows"):
        read_folds(path)


def test_a_meta_file_without_rows_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "meta.csv"
    path.write_text(",".join(META_COLUMNS) + "\n")
    with pytest.raises(UserError, match=f"{path}: holds a header but no data rows"):
        read_meta(path)


def test_a_table_with_a_header_and_blank_lines_has_no_rows(tmp_path: Path) -> None:
    path = tmp_path / SUBMISSION_FORMAT
    path.write_text(",".join([ID_COL, *CLASSES]) + "\n\n\n")
    with pytest.raises(UserError, match="holds a header but no data rows"):
        read_format(path)


def test_folds_refuses_fewer_sites_than_folds_naming_both_numbers_and_writes_nothing(
    tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    features = pd.read_csv(data / TRAIN_FEATURES, dtype=str)
    features["site"] = ["S1" if k % 2 else "S2" for k in range(len(features))]
    features.to_csv(data / TRAIN_FEATURES, index=False)
    out = tmp_path / "folds" / "folds.csv"
    assert main(["folds", "--data", str(data), "--out", str(out), "--n-splits", "3"]) == 2
    _one_line(capsys, "2 sites cannot make 3 site-grouped folds")
    assert not out.exists()


def test_folds_on_tables_without_rows_is_one_line_and_writes_nothing(
    tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    _header_only(data / TRAIN_FEATURES)
    _header_only(data / TRAIN_LABELS)
    out = tmp_path / "folds" / "folds.csv"
    assert main(["folds", "--data", str(data), "--out", str(out)]) == 2
    _one_line(capsys, str(data / TRAIN_FEATURES), "no data rows")
    assert not out.exists()
