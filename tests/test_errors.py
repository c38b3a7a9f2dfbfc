"""A user's mistake ends every command the same way: one stderr line
`kaggle-style <command>: error: <what, where, what to do>` and exit status 2; the traceback only
with `--debug` or KAGGLE_STYLE_DEBUG=1. Runs the installed `kaggle-style`, as a user would."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kaggle_style import cli
from kaggle_style.constants import ID_COL
from kaggle_style.prediction_files import make_frame
from kaggle_style.task import CONSERVISION_CLASSES as CLASSES
from kaggle_style.task import SUBMISSION_FORMAT

REPO = Path(__file__).resolve().parents[1]
KS = REPO / ".venv" / "bin" / "kaggle-style"
TINY_CPU = REPO / "configs" / "tiny-cpu.yaml"


def run_cli(*args: str, cwd: Path, debug_env: bool = False) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != cli.DEBUG_ENV}
    env["OMP_NUM_THREADS"] = "1"
    if debug_env:
        env[cli.DEBUG_ENV] = "1"
    return subprocess.run(
        [str(KS), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


def assert_one_line_error(result: subprocess.CompletedProcess, command: str, *names: str) -> str:
    """Exit 2, exactly one stderr line in the house format, naming each of `names`."""
    lines = result.stderr.splitlines()
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith(f"kaggle-style {command}: error: "), lines[0]
    assert "Traceback" not in result.stderr
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("errors")


@pytest.fixture(scope="module")
def format_file(shared_data: Path) -> Path:
    return shared_data / "conservision" / SUBMISSION_FORMAT


@pytest.fixture(scope="module")
def predictions(work: Path, format_file: Path) -> Path:
    ids = pd.read_csv(format_file, dtype={ID_COL: str})[ID_COL].to_numpy()
    path = work / "test.csv"
    make_frame(ids, np.full((len(ids), len(CLASSES)), 1 / len(CLASSES)), classes=CLASSES).to_csv(
        path, index=False
    )
    return path


def _yaml(work: Path, name: str, text: str) -> Path:
    path = work / name
    path.write_text(text)
    return path


def _bad_value_config(work: Path) -> Path:
    return _yaml(work, "epochs0.yaml", TINY_CPU.read_text() + "\nepochs: 0\n")


# (command, arguments given the work folder, strings the line must name)
CASES: dict[str, tuple[str, Callable[[Path], list[str]], list[str]]] = {
    "folds: missing data folder": (
        "folds",
        lambda w: ["--data", str(w / "nowhere"), "--out", str(w / "f.csv")],
        ["nowhere", "data folder not found"],
    ),
    "folds: one fold": (
        "folds",
        lambda w: ["--data", str(w / "nowhere"), "--n-splits", "1"],
        ["command line: n_splits: 1", "at least 2"],
    ),
    "train: bad config value": (
        "train",
        lambda w: ["--config", str(_bad_value_config(w))],
        ["epochs0.yaml", "epochs"],
    ),
    "train: unknown key": (
        "train",
        lambda w: ["--config", str(TINY_CPU), "--set", "learning_rate=0.1"],
        ["--set", "unknown key(s) learning_rate"],
    ),
    "train: lr nan": (
        "train",
        lambda w: ["--config", str(TINY_CPU), "--set", "lr=.nan"],
        ["--set", "lr"],
    ),
    "train: malformed YAML": (
        "train",
        lambda w: ["--config", str(_yaml(w, "broken.yaml", "lr: 0.1\nepochs: [1\n"))],
        ["broken.yaml: line 3", "malformed YAML"],
    ),
    "train: config file missing": (
        "train",
        lambda w: ["--config", str(w / "absent.yaml")],
        ["absent.yaml", "not found"],
    ),
    "detect: missing data folder": (
        "detect",
        lambda w: ["--data", str(w / "nowhere"), "--out", str(w / "d.json")],
        ["nowhere"],
    ),
    "detect: batch size 0": (
        "detect",
        lambda w: ["--data", str(w), "--batch-size", "0", "--out", str(w / "d.json")],
        ["batch_size"],
    ),
    "tune: malformed YAML": (
        "tune",
        lambda w: ["--study", "s", "--config", str(_yaml(w, "tune-broken.yaml", "lr: [\n"))],
        ["tune-broken.yaml: line", "malformed YAML"],
    ),
    "tune: zero trials": (
        "tune",
        lambda w: ["--study", "s", "--config", str(TINY_CPU), "--n-trials", "0"],
        ["trials", "at least 1"],
    ),  # names the flag or the key (n_trials)
    "check-data: missing folder": (
        "check-data",
        lambda w: [str(w / "nowhere")],
        ["nowhere", "folder not found"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_user_error_is_one_line_and_exit_2(case: str, work: Path) -> None:
    command, make_args, names = CASES[case]
    result = run_cli(command, *make_args(work), cwd=work)
    assert_one_line_error(result, command, *names)


def test_submit_clip_half_is_refused(work: Path, predictions: Path, format_file: Path) -> None:
    out = work / "sub-clip.csv"
    result = run_cli(
        "submit",
        "--predictions",
        str(predictions),
        "--format",
        str(format_file),
        "--out",
        str(out),
        "--clip",
        "0.5",
        cwd=work,
    )
    assert_one_line_error(result, "submit", "--clip 0.5", "below 0.125")
    assert not out.exists()


def test_submit_missing_predictions_file(work: Path, format_file: Path) -> None:
    missing = work / "runs" / "none" / "test.csv"
    result = run_cli(
        "submit",
        "--predictions",
        str(missing),
        "--format",
        str(format_file),
        "--out",
        str(work / "sub.csv"),
        cwd=work,
    )
    assert_one_line_error(result, "submit", str(missing), "file not found")


def test_submit_non_utf8_predictions(work: Path, predictions: Path, format_file: Path) -> None:
    latin = work / "latin1.csv"
    latin.write_bytes(predictions.read_bytes().replace(b"ZJ016488", b"ZJ\xe916488", 1))
    result = run_cli(
        "submit",
        "--predictions",
        str(latin),
        "--format",
        str(format_file),
        "--out",
        str(work / "sub.csv"),
        cwd=work,
    )
    assert_one_line_error(result, "submit", str(latin), "not UTF-8")


def test_submit_output_under_a_file_names_the_path(
    work: Path, predictions: Path, format_file: Path
) -> None:
    (work / "plain-file").write_text("x")
    result = run_cli(
        "submit",
        "--predictions",
        str(predictions),
        "--format",
        str(format_file),
        "--out",
        str(work / "plain-file" / "sub.csv"),
        cwd=work,
    )
    assert_one_line_error(result, "submit", "plain-file", "already exists")


def test_validate_id_with_spaces(work: Path, predictions: Path, format_file: Path) -> None:
    sub = work / "spaced.csv"
    frame = pd.read_csv(predictions, dtype=str, keep_default_na=False)
    frame.loc[3, ID_COL] = " " + frame.loc[3, ID_COL]
    frame.to_csv(sub, index=False)
    result = run_cli("validate", str(sub), "--format", str(format_file), cwd=work)
    line = assert_one_line_error(result, "validate", str(sub), "whitespace")
    assert repr(frame.loc[3, ID_COL]) in line
    assert "INVALID: 1 problem(s)" in result.stdout


def test_score_labels_not_utf8(work: Path, predictions: Path) -> None:
    labels = work / "labels.csv"
    labels.write_bytes(b"id,bird\nZJ\xff\n")
    result = run_cli("score", str(predictions), "--labels", str(labels), cwd=work)
    assert_one_line_error(result, "score", str(labels), "not UTF-8")


@pytest.mark.parametrize("how", ["flag", "env"])
def test_debug_shows_the_traceback_then_the_line(
    how: str, work: Path, predictions: Path, format_file: Path
) -> None:
    args = [
        "submit",
        "--predictions",
        str(predictions),
        "--format",
        str(format_file),
        "--out",
        str(work / "sub.csv"),
        "--clip",
        "0.5",
    ]
    if how == "flag":
        result = run_cli("--debug", *args, cwd=work)
    else:
        result = run_cli(*args, cwd=work, debug_env=True)
    assert result.returncode == 2
    assert "Traceback (most recent call last)" in result.stderr
    assert "SubmissionError" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("kaggle-style submit: error: --clip 0.5")


def test_a_command_whose_module_is_missing_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setitem(cli.COMMANDS, "ghost", ("no_such_stage", "a stage not written yet"))
    assert cli.main(["ghost"]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(
        "kaggle-style ghost: error: the module kaggle_style.stages.no_such_stage"
    )


def test_every_command_has_its_stage_module() -> None:
    missing = [
        name
        for name, (module, _) in cli.COMMANDS.items()
        if not (REPO / "kaggle_style" / "stages" / f"{module}.py").is_file()
    ]
    assert missing == []


def test_a_bug_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only user errors become one line: anything else is a bug and must stay loud."""
    assert cli.user_error_message(KeyError("x")) is None
    assert cli.user_error_message(ValueError("x")) is None
    assert cli.user_error_message(FileNotFoundError(2, "No such file", "a/b.csv")) == (
        "a/b.csv: no such file or folder (--debug shows where it happened)"
    )


def test_one_line_joins_a_listed_message() -> None:
    assert cli.one_line("x.csv: failed validation:\n  a\n  b") == "x.csv: failed validation: a; b"
