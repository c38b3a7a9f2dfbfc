"""`real-dry-run`: the real Conser-vision tables through every stage (tiny model, capped steps)."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest

from benchmarks.growth import growth
from benchmarks.real_dry_run import MODEL_NAME, DryRunConfig, main, real_dry_run
from kaggle_style.constants import ID_COL, OOF_FILE, SHARED_DATA_ENV, SITE_COL
from kaggle_style.errors import UserError
from kaggle_style.task import SUBMISSION_FORMAT, TEST_FEATURES, TRAIN_FEATURES

PROCESS_STAGES = ("check-data", "folds", "crop", "train", "ensemble", "submit", "validate")
IN_PROCESS = ("generate_images", "detect (generated)")  # run in the checker's own process


def _real(shared_data: Path) -> dict[str, pd.DataFrame]:
    source = shared_data / "conservision"
    return {
        name: pd.read_csv(source / name, dtype={ID_COL: str})
        for name in (TRAIN_FEATURES, TEST_FEATURES, SUBMISSION_FORMAT)
    }


def _assert_stages_timed(result: dict, report: bool, wall: float) -> None:
    """Every stage once, in order; each command in its own process (its own peak: a python
    process with pandas is tens of MiB, and validate's is below train's, which holds torch and
    a model: the checker's own size for every stage would make them equal); the stages ran one
    after another inside the call."""
    commands = [*PROCESS_STAGES, *(("report",) if report else ())]
    assert list(result["stages"]) == [*IN_PROCESS, *commands]
    for name in IN_PROCESS:
        assert "peak_rss_mib" not in result["stages"][name], name  # not a process of its own
    peaks = {name: result["stages"][name]["peak_rss_mib"] for name in commands}
    assert all(peak >= 10 for peak in peaks.values()), peaks
    assert peaks["validate"] < peaks["train"], peaks
    stage_sum = sum(stage["seconds"] for stage in result["stages"].values())
    assert result["total_s"] == round(stage_sum, 1)
    assert stage_sum <= wall


@pytest.mark.slow  # a benchmark over the real CSVs' stages (make real-dry-run's own test)
def test_fraction_runs_whole_real_sites(shared_data: Path, tmp_path: Path) -> None:
    """A site subset: whole real sites, real ids and rows, every stage, a valid submission."""
    cfg = DryRunConfig(
        work_dir=str(tmp_path / "dry"),
        source=str(shared_data / "conservision"),
        fraction=0.01,
        n_splits=2,
        max_steps=2,
        max_eval_steps=1,
        report=False,
    )
    started = time.perf_counter()
    result = real_dry_run(cfg)
    wall = time.perf_counter() - started
    real = _real(shared_data)
    work = Path(cfg.work_dir)
    train = pd.read_csv(work / "data" / TRAIN_FEATURES, dtype={ID_COL: str})
    test = pd.read_csv(work / "data" / TEST_FEATURES, dtype={ID_COL: str})
    for mine, full in ((train, real[TRAIN_FEATURES]), (test, real[TEST_FEATURES])):
        whole = full[full[SITE_COL].isin(set(mine[SITE_COL]))]
        assert sorted(mine[ID_COL]) == sorted(whole[ID_COL])  # whole sites, nothing else
        assert len(mine) < len(full)
        assert (work / "data" / mine[mine.columns[1]].iloc[0]).is_file()  # real filepath
    assert result["train_sites"] >= 2
    oof = pd.read_csv(work / "runs" / MODEL_NAME / OOF_FILE, dtype={ID_COL: str})
    assert oof[ID_COL].is_unique and set(oof[ID_COL]) == set(train[ID_COL])
    sub = pd.read_csv(work / "submission.csv", dtype={ID_COL: str})
    fmt = real[SUBMISSION_FORMAT]
    assert sub[ID_COL].tolist() == fmt[fmt[ID_COL].isin(set(test[ID_COL]))][ID_COL].tolist()
    assert list(sub.columns) == list(fmt.columns)
    assert result["submission_valid"] and result["ok"]
    _assert_stages_timed(result, report=False, wall=wall)


def test_growth_flags_a_stage_faster_than_the_data() -> None:
    def run(n: int, seconds: dict[str, float]) -> dict:
        return {
            "train_ids": n,
            "test_ids": 0,
            "stages": {k: {"seconds": v, "peak_rss_mib": 1} for k, v in seconds.items()},
        }

    small = run(100, {"linear": 1.0, "quadratic": 1.0, "masked": 5.0, "tiny": 0.1})
    full = run(800, {"linear": 8.5, "quadratic": 64.0, "masked": 36.0, "tiny": 2.0})
    # "masked": 4 s of start-up + work 1 s -> 32 s: only the start-up-less ratio shows it.
    table = growth(small, full, startup={"masked": 4.0})
    assert table["data_growth"] == 8.0
    assert table["superlinear"] == ["quadratic", "masked"]  # "tiny": under 3 s, noise
    assert table["stages"]["quadratic"]["exponent"] == 2.0
    assert table["stages"]["masked"]["ratio"] == 7.2
    assert table["stages"]["masked"]["work_ratio"] == 32
    assert growth(small, full)["superlinear"] == ["quadratic"]  # without start-up: hidden


def test_refuses_a_work_dir_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(UserError, match="did not make"):
        real_dry_run(DryRunConfig(work_dir=str(tmp_path)))
    assert (tmp_path / "precious.txt").exists()


@pytest.mark.slow
def test_full_size_real_tables(shared_data: Path, tmp_path: Path) -> None:
    """Every real id through every stage; the submission validates against the REAL format."""
    cfg = DryRunConfig(work_dir=str(tmp_path / "dry"), source=str(shared_data / "conservision"))
    started = time.perf_counter()
    result = real_dry_run(cfg)
    assert_full_size(result, Path(cfg.work_dir), shared_data, time.perf_counter() - started)


def assert_full_size(result: dict, work: Path, shared_data: Path, wall: float) -> None:
    real = _real(shared_data)
    assert (work / "data" / TRAIN_FEATURES).is_symlink()  # the real file, not a copy
    assert result["format_file"] == str(shared_data / "conservision" / SUBMISSION_FORMAT)
    oof = pd.read_csv(work / "runs" / MODEL_NAME / OOF_FILE, dtype={ID_COL: str})
    assert len(oof) == 16_488 and oof[ID_COL].is_unique
    assert set(oof[ID_COL]) == set(real[TRAIN_FEATURES][ID_COL])
    sub = pd.read_csv(work / "submission.csv", dtype={ID_COL: str})
    assert len(sub) == 4_464
    assert sub[ID_COL].tolist() == real[SUBMISSION_FORMAT][ID_COL].tolist()
    assert result["submission_valid"] and result["submission_problems"] == []
    assert result["train_sites"] == 148 and result["test_sites"] == 51
    _assert_stages_timed(result, report=True, wall=wall)


@pytest.mark.parametrize(
    "change", [{"fraction": 0.0}, {"fraction": 1.5}, {"n_splits": 1}, {"max_steps": 0}]
)
def test_bad_sizes_fail_before_any_work(change: dict) -> None:
    with pytest.raises(UserError, match=next(iter(change))):
        DryRunConfig(**change)


def test_without_a_source_the_error_is_one_line_naming_both_ways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.delenv(SHARED_DATA_ENV, raising=False)
    assert main(["--work-dir", str(tmp_path / "dry")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--source" in err and SHARED_DATA_ENV in err
    assert not (tmp_path / "dry").exists()
    monkeypatch.setenv(SHARED_DATA_ENV, str(tmp_path))  # a folder without conservision/
    assert main(["--work-dir", str(tmp_path / "dry")]) == 2
    assert str(tmp_path / "conservision") in capsys.readouterr().err
