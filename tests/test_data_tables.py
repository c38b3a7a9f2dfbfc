"""kaggle_style.data.tables: bad tables fail early, naming the file, the column and the ids;
image paths may not leave the data folder nor be shared by train and test."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from kaggle_style.data.tables import TableError, escapes, load_competition_data
from kaggle_style.task import SUBMISSION_FORMAT, TEST_FEATURES, TRAIN_FEATURES, TRAIN_LABELS


def _edit(path: Path, change) -> None:
    frame = pd.read_csv(path, dtype={"id": str})
    change(frame).to_csv(path, index=False)


@pytest.mark.parametrize(
    ("file", "change", "message"),
    [
        (TRAIN_FEATURES, lambda f: f.rename(columns={"site": "sight"}), "missing column.*site"),
        (TRAIN_FEATURES, lambda f: pd.concat([f, f.iloc[:2]]), "duplicate ids"),
        (TRAIN_FEATURES, lambda f: f.assign(site=[None, *f.site[1:]]), "'site' is missing"),
        (TRAIN_FEATURES, lambda f: f.iloc[1:], "ids without a row in train_features|label ids"),
        (TRAIN_LABELS, lambda f: f.iloc[1:], "ids without a row in train_labels"),
        (TRAIN_LABELS, lambda f: f.assign(hog=1.0), "not one-hot"),
        (TRAIN_LABELS, lambda f: f.assign(bird="x"), "non-numeric"),
        (TRAIN_LABELS, lambda f: f.drop(columns=["leopard"]), "missing column.*leopard"),
    ],
)
def test_bad_tables_fail_naming_file_column_and_ids(data_copy: Path, file, change, message) -> None:
    _edit(data_copy / file, change)
    with pytest.raises(TableError, match=message) as err:
        load_competition_data(data_copy)
    assert str(data_copy) in str(err.value)


def test_empty_table_is_an_error(data_copy: Path) -> None:
    (data_copy / TRAIN_LABELS).write_text("")
    with pytest.raises(TableError, match="empty"):
        load_competition_data(data_copy)


def test_non_utf8_table_names_the_file(data_copy: Path) -> None:
    path = data_copy / TRAIN_FEATURES
    path.write_bytes(path.read_bytes().replace(b"S0", b"S\xe90", 1))
    with pytest.raises(TableError, match=r"train_features\.csv: not UTF-8 text .*save") as err:
        load_competition_data(data_copy)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("filepath", ["../../etc/passwd", "/etc/passwd", "train_features/../.."])
def test_filepath_outside_the_data_folder_is_refused(data_copy: Path, filepath: str) -> None:
    _edit(data_copy / TRAIN_FEATURES, lambda f: f.assign(filepath=[filepath, *f.filepath[1:]]))
    with pytest.raises(TableError, match=r"outside the data folder.*allow_outside_data"):
        load_competition_data(data_copy)
    assert len(load_competition_data(data_copy, allow_outside_data=True).train) > 0


def test_escapes_is_lexical() -> None:
    assert not escapes("train_features/a.jpg")
    assert not escapes("train_features/../test_features/a.jpg")  # inside, caught as shared below
    assert escapes("../a.jpg") and escapes("/abs/a.jpg") and escapes("a/../../b.jpg")
    assert not escapes("..a.jpg")


@pytest.mark.parametrize("absolute", [False, True])
def test_same_file_in_train_and_test_is_refused(data_copy: Path, absolute: bool) -> None:
    test = pd.read_csv(data_copy / TEST_FEATURES, dtype=str)
    target = test.filepath[0]
    # an absolute path to a test image needs the option, and is still refused
    target = str((data_copy / target).resolve()) if absolute else "train_features/../" + target
    _edit(data_copy / TRAIN_FEATURES, lambda f: f.assign(filepath=[target, *f.filepath[1:]]))
    with pytest.raises(TableError, match="also training images") as err:
        load_competition_data(data_copy, allow_outside_data=True)
    assert test.id[0] in str(err.value)


def test_submission_format_must_list_the_test_ids(data_copy: Path) -> None:
    _edit(data_copy / SUBMISSION_FORMAT, lambda f: f.iloc[1:])
    with pytest.raises(TableError, match=r"submission_format\.csv: ids differ.*1 test id"):
        load_competition_data(data_copy)
