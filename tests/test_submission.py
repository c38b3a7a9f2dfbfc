"""submit / validate / score against the real Conser-vision submission format (4,464 test ids)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kaggle_style.cli import main
from kaggle_style.constants import FOLD_COL, ID_COL, SUM_TOLERANCE
from kaggle_style.metrics import log_loss
from kaggle_style.prediction_files import PredictionError, make_frame, read_predictions
from kaggle_style.submission import (
    SubmissionError,
    check_submission,
    make_submission,
    score_predictions,
)
from kaggle_style.task import CONSERVISION_CLASSES as CLASSES


def _problems(path: Path, format_path: Path, strict_order: bool = False) -> list[str]:
    return check_submission(path, format_path, strict_order)[0]


@pytest.fixture(scope="module")
def format_path(shared_data: Path) -> Path:
    """The real Conser-vision submission format (4,464 ids)."""
    return shared_data / "conservision" / "submission_format.csv"


@pytest.fixture(scope="module")
def valid_submission(tmp_path_factory: pytest.TempPathFactory, format_path: Path) -> Path:
    """A submission made by `submit` from a uniform prediction in shuffled row/column order.

    Module-scoped (made once); tests that overwrite it copy it first.
    """
    tmp_path = tmp_path_factory.mktemp("submit")
    ids = pd.read_csv(format_path, dtype={ID_COL: str})[ID_COL].to_numpy()
    rng = np.random.default_rng(0)
    shuffled = rng.permutation(ids)
    frame = make_frame(
        shuffled, np.full((len(ids), len(CLASSES)), 1.0 / len(CLASSES)), classes=CLASSES
    )
    frame = frame[[ID_COL, *reversed(CLASSES)]]
    pred_path = tmp_path / "test.csv"
    frame.to_csv(pred_path, index=False)
    return make_submission(pred_path, format_path, tmp_path / "submissions" / "uniform.csv")


def test_submit_writes_format_order_and_validates(valid_submission: Path, format_path: Path):
    fmt = pd.read_csv(format_path, dtype={ID_COL: str})
    sub = pd.read_csv(valid_submission, dtype={ID_COL: str})
    assert len(fmt) == 4464
    assert list(sub.columns) == list(fmt.columns)
    assert sub[ID_COL].tolist() == fmt[ID_COL].tolist()
    np.testing.assert_allclose(sub[list(CLASSES)].to_numpy(), 1.0 / len(CLASSES), rtol=1e-12)
    assert _problems(valid_submission, format_path, strict_order=True) == []


def test_submit_clips_and_renormalises(tmp_path: Path, format_path: Path):
    ids = pd.read_csv(format_path, dtype={ID_COL: str})[ID_COL].to_numpy()
    probs = np.zeros((len(ids), len(CLASSES)))
    probs[:, 2] = 1.0
    pred_path = tmp_path / "test.csv"
    make_frame(ids, probs, classes=CLASSES).to_csv(pred_path, index=False)
    out = make_submission(pred_path, format_path, tmp_path / "sub.csv", clip=1e-6)
    values = pd.read_csv(out)[list(CLASSES)].to_numpy()
    assert values.min() > 0
    np.testing.assert_allclose(values.sum(axis=1), 1.0, atol=1e-12)


def test_submit_refuses_missing_ids_and_keeps_previous_file(
    tmp_path: Path, format_path: Path, valid_submission: Path
):
    previous = tmp_path / "previous.csv"
    previous.write_bytes(valid_submission.read_bytes())
    before = previous.read_bytes()
    ids = pd.read_csv(format_path, dtype={ID_COL: str})[ID_COL].to_numpy()[:-2]
    pred_path = tmp_path / "partial.csv"
    make_frame(ids, np.full((len(ids), len(CLASSES)), 1.0 / len(CLASSES)), classes=CLASSES).to_csv(
        pred_path, index=False
    )
    with pytest.raises(SubmissionError, match="2 id"):
        make_submission(pred_path, format_path, previous)
    assert previous.read_bytes() == before


def _set_cell(value: str, row: int = 5) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def mutate(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        frame.loc[row, "bird"] = value
        return frame

    return mutate


def _outside(frame: pd.DataFrame) -> pd.DataFrame:
    """A row that still sums to 1 but holds 1.5 and -0.5."""
    frame = frame.copy()
    frame.loc[3, list(CLASSES)] = "0"
    frame.loc[3, "bird"] = "1.5"
    frame.loc[3, "blank"] = "-0.5"
    return frame


def _swap_columns(frame: pd.DataFrame) -> pd.DataFrame:
    cols = list(frame.columns)
    cols[1], cols[2] = cols[2], cols[1]
    return frame[cols]


def _scale_row(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[7, list(CLASSES)] = [str(float(v) * 1.01) for v in frame.loc[7, list(CLASSES)]]
    return frame


def _set_id(value: str, row: int = 4) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def mutate(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        frame.loc[row, ID_COL] = value
        return frame

    return mutate


def _pad_id(left: str, right: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def mutate(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        frame.loc[4, ID_COL] = left + frame.loc[4, ID_COL] + right
        return frame

    return mutate


BROKEN: dict[str, tuple[Callable[[pd.DataFrame], pd.DataFrame] | str | bytes, str]] = {
    "missing ids": (lambda f: f.drop(index=[0, 1, 2]), "missing id"),
    "extra ids": (
        lambda f: pd.concat([f, f.iloc[[0]].assign(id="ZJ999999")], ignore_index=True),
        "extra id",
    ),
    "duplicate ids": (lambda f: f.assign(id=[f.loc[1, ID_COL], *f[ID_COL][1:]]), "duplicate"),
    "wrong column": (lambda f: f.rename(columns={"hog": "pig"}), "missing column(s): hog"),
    "extra column": (lambda f: f.assign(extra="0"), "unexpected column(s): extra"),
    "misordered columns": (_swap_columns, "misordered"),
    "wrong row count": (lambda f: f.iloc[:-1], "wrong row count"),
    "non-numeric cell": (_set_cell("abc"), "non-numeric"),
    "NaN value": (_set_cell("nan"), "NaN"),
    "empty cell": (_set_cell(""), "NaN or empty"),
    "infinite value": (_set_cell("inf"), "infinite"),
    "outside [0, 1]": (_outside, "outside [0, 1]"),
    "row sum off 1": (_scale_row, "do not sum to 1"),
    "empty file": ("", "empty"),
    "header only": (",".join([ID_COL, *CLASSES]) + "\n", "empty"),
    "space before an id": (_pad_id(" ", ""), "only in whitespace: ' ZJ"),
    "space after an id": (_pad_id("", " "), "only in whitespace: 'ZJ"),
    "tab after an id": (_pad_id("", "\t"), "\\t'"),
    "id in lower case": (_set_id("zj016492"), "extra id(s) not in the format file: zj016492"),
    "not UTF-8": (b"id,bird\nZJ\xe9\n", "not UTF-8"),
}


@pytest.mark.parametrize("kind", list(BROKEN))
def test_validate_rejects_each_kind_of_broken_file(
    kind: str, tmp_path: Path, valid_submission: Path, format_path: Path
):
    mutate, expected = BROKEN[kind]
    path = tmp_path / "broken.csv"
    if isinstance(mutate, bytes):
        path.write_bytes(mutate)
    elif isinstance(mutate, str):
        path.write_text(mutate)
    else:
        good = pd.read_csv(valid_submission, dtype=str, keep_default_na=False)
        mutate(good).to_csv(path, index=False)
    problems = _problems(path, format_path)
    assert problems, f"{kind}: accepted a broken file"
    assert any(expected in p for p in problems), problems


def test_validate_allows_other_row_order_unless_strict(
    tmp_path: Path, valid_submission: Path, format_path: Path
):
    frame = pd.read_csv(valid_submission, dtype=str)
    path = tmp_path / "reordered.csv"
    frame.iloc[::-1].to_csv(path, index=False)
    problems, notes = check_submission(path, format_path)
    assert problems == []
    assert any("different order" in n for n in notes)
    strict = _problems(path, format_path, strict_order=True)
    assert any("different order" in p for p in strict)


def test_validate_cli_exit_codes(
    tmp_path: Path, valid_submission: Path, format_path: Path, capsys: pytest.CaptureFixture
):
    assert main(["validate", str(valid_submission), "--format", str(format_path)]) == 0
    broken = tmp_path / "broken.csv"
    pd.read_csv(valid_submission, dtype=str).iloc[:-1].to_csv(broken, index=False)
    assert main(["validate", str(broken), "--format", str(format_path)]) == 2
    captured = capsys.readouterr()
    assert "INVALID" in captured.out
    assert "missing id" in captured.out
    (line,) = captured.err.splitlines()
    assert line.startswith(f"kaggle-style validate: error: {broken}: not a valid submission, 2 ")


def test_submit_cli_prints_where_it_wrote(
    tmp_path: Path, format_path: Path, capsys: pytest.CaptureFixture
):
    ids = pd.read_csv(format_path, dtype={ID_COL: str})[ID_COL].to_numpy()
    pred_path = tmp_path / "test.csv"
    make_frame(ids, np.full((len(ids), len(CLASSES)), 1.0 / len(CLASSES)), classes=CLASSES).to_csv(
        pred_path, index=False
    )
    out = tmp_path / "submissions" / "x.csv"
    rc = main(
        ["submit", "--predictions", str(pred_path), "--format", str(format_path), "--out", str(out)]
    )
    assert rc == 0
    assert out.is_file()
    assert str(out) in capsys.readouterr().out


def test_score_equals_metrics_log_loss(tmp_path: Path, capsys: pytest.CaptureFixture):
    rng = np.random.default_rng(1)
    n = 300
    ids = np.array([f"ZJ{i:06d}" for i in range(n)])
    y = rng.integers(0, len(CLASSES), n)
    labels = pd.DataFrame({ID_COL: ids[:250]})
    labels[list(CLASSES)] = np.eye(len(CLASSES))[y[:250]]
    labels.to_csv(tmp_path / "train_labels.csv", index=False)
    probs = rng.dirichlet(np.ones(len(CLASSES)), n)
    folds = np.arange(n) % 3
    make_frame(ids, probs, folds, classes=CLASSES).to_csv(tmp_path / "oof.csv", index=False)

    result = score_predictions(tmp_path / "oof.csv", tmp_path / "train_labels.csv")
    assert result["n"] == 250
    assert result["n_unlabelled"] == 50
    assert result["log_loss"] == pytest.approx(log_loss(y[:250], probs[:250]), rel=1e-12)
    assert set(result["per_fold_log_loss"]) == {"0", "1", "2"}

    rc = main(
        [
            "score",
            str(tmp_path / "oof.csv"),
            "--labels",
            str(tmp_path / "train_labels.csv"),
            "--json",
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert "scored 250 of 300" in printed[0]
    assert "confusion matrix" in "\n".join(printed)
    assert json.loads(printed[-1])["log_loss"] == pytest.approx(result["log_loss"], rel=1e-12)


def test_read_predictions_rejects_bad_sums_and_missing_fold(tmp_path: Path):
    ids = ["a", "b"]
    frame = make_frame(ids, np.full((2, len(CLASSES)), 1.0 / len(CLASSES)), classes=CLASSES)
    frame.loc[0, "bird"] = 0.9
    frame.to_csv(tmp_path / "p.csv", index=False)
    with pytest.raises(PredictionError, match="do not sum to 1"):
        read_predictions(tmp_path / "p.csv")
    make_frame(ids, np.full((2, len(CLASSES)), 1.0 / len(CLASSES)), classes=CLASSES).to_csv(
        tmp_path / "q.csv", index=False
    )
    with pytest.raises(PredictionError, match=FOLD_COL):
        read_predictions(tmp_path / "q.csv", require_fold=True)


def test_validate_names_a_padded_id_once_and_not_as_reordered(
    tmp_path: Path, valid_submission: Path, format_path: Path
):
    good = pd.read_csv(valid_submission, dtype=str, keep_default_na=False)
    path = tmp_path / "padded.csv"
    _pad_id(" ", " ")(good).to_csv(path, index=False)
    problems, notes = check_submission(path, format_path)
    padded = repr(" " + good.loc[4, ID_COL] + " ")
    assert len(problems) == 1 and padded in problems[0], problems
    assert notes == []


@pytest.mark.parametrize(
    "off, accepted", [(4e-6, True), (5e-5, True), (2e-4, False), (1e-2, False)]
)
def test_one_sum_tolerance_for_submissions_and_prediction_files(
    off: float, accepted: bool, tmp_path: Path, valid_submission: Path, format_path: Path
):
    """Rows off by 4e-6 (8 values rounded to 6 decimals) pass both checks; 2e-4 fails both."""
    assert SUM_TOLERANCE == 1e-4
    good = pd.read_csv(valid_submission, dtype=str, keep_default_na=False)
    good.loc[7, "bird"] = repr(float(good.loc[7, "bird"]) + off)
    path = tmp_path / "off.csv"
    good.to_csv(path, index=False)
    problems = _problems(path, format_path)
    assert (problems == []) == accepted, problems
    if accepted:
        read_predictions(path)
    else:
        with pytest.raises(PredictionError, match="do not sum to 1"):
            read_predictions(path)


@pytest.mark.parametrize("clip", [0.5, 0.125, -1e-3, float("nan")])
def test_submit_refuses_a_clip_that_flattens_rows(
    clip: float, tmp_path: Path, format_path: Path, valid_submission: Path
):
    out = tmp_path / "sub.csv"
    with pytest.raises(SubmissionError, match="--clip"):
        make_submission(valid_submission, format_path, out, clip=clip)
    assert not out.exists()


def test_submit_accepts_a_clip_just_below_one_eighth(
    tmp_path: Path, format_path: Path, valid_submission: Path
):
    ids = pd.read_csv(format_path, dtype={ID_COL: str})[ID_COL].to_numpy()
    probs = np.zeros((len(ids), len(CLASSES)))
    probs[:, 2] = 1.0
    pred_path = tmp_path / "test.csv"
    make_frame(ids, probs, classes=CLASSES).to_csv(pred_path, index=False)
    out = make_submission(pred_path, format_path, tmp_path / "sub.csv", clip=0.12)
    values = pd.read_csv(out)[list(CLASSES)].to_numpy()
    assert (values.argmax(axis=1) == 2).all()  # still says "blank", not uniform
    assert values[:, 2].min() > 1.0 / len(CLASSES) + 0.01
