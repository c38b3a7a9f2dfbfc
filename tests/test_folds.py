"""Folds on the real Conser-vision site distribution and on generated data."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from kaggle_style.config import ConfigError, resolve_config
from kaggle_style.constants import FOLD_COL, ID_COL, SITE_COL
from kaggle_style.data.folds import FoldsConfig, fold_table, make_folds
from kaggle_style.data.tables import TableError, load_competition_data, read_folds
from kaggle_style.errors import UserError


@pytest.fixture(scope="module")
def real_train(shared_data: Path) -> pd.DataFrame:
    return load_competition_data(shared_data / "conservision").train


def test_real_folds_group_sites_cover_ids_and_balance(real_train: pd.DataFrame) -> None:
    assert len(real_train) == 16_488 and real_train[SITE_COL].nunique() == 148
    folds = make_folds(real_train, n_splits=5, seed=42)
    assert folds[ID_COL].is_unique and set(folds[ID_COL]) == set(real_train[ID_COL])
    assert (folds[FOLD_COL] >= 0).all()
    assert (folds.groupby(SITE_COL)[FOLD_COL].nunique() == 1).all(), "a site spans two folds"
    sizes = folds.groupby(FOLD_COL).size()
    assert ((sizes - sizes.mean()).abs() <= 0.25 * sizes.mean()).all(), sizes.to_dict()


def test_fold_table_lists_images_sites_and_class_shares(real_train: pd.DataFrame) -> None:
    table = fold_table(make_folds(real_train, n_splits=5, seed=0))
    assert table["images"].sum() == 16_488
    assert table["sites"].sum() == 148
    assert table.drop(columns=["images", "sites"]).sum(axis=1).round(2).eq(1.0).all()


def test_folds_are_deterministic_for_a_seed(real_train: pd.DataFrame) -> None:
    a = make_folds(real_train, n_splits=5, seed=3)
    b = make_folds(real_train, n_splits=5, seed=3)
    assert a.equals(b)


def test_folds_cli_writes_file_and_table(tiny_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "folds" / "folds.csv"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "kaggle_style",
            "folds",
            "--data",
            str(tiny_data),
            "--out",
            str(out),
            "--n-splits",
            "3",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "images" in result.stdout and "sites" in result.stdout
    folds = read_folds(out, load_competition_data(tiny_data).train)
    assert sorted(folds[FOLD_COL].unique()) == [0, 1, 2]
    assert (out.parent / "folds.config.yaml").exists()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("n_splits=1", "n_splits: 1 is out of range; it must be at least 2"),
        ("group_by=camera", "group_by: 'camera' is not one of 'site', 'none'"),
    ],
)
def test_folds_config_is_checked_before_any_work(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=f"^--set: {message}"):
        resolve_config(FoldsConfig, overrides=[override])


def test_more_folds_than_sites_is_a_user_error(real_train: pd.DataFrame) -> None:
    few_sites = real_train[real_train[SITE_COL].isin(real_train[SITE_COL].unique()[:3])]
    with pytest.raises(UserError, match="3 sites cannot make 5 site-grouped folds"):
        make_folds(few_sites, n_splits=5, seed=0)
    folds = make_folds(few_sites, n_splits=5, seed=0, group_by="none")
    assert sorted(folds[FOLD_COL].unique()) == [0, 1, 2, 3, 4]


def test_folds_file_that_does_not_match_the_data_is_an_error(
    tiny_data: Path, tiny_folds: Path, tmp_path: Path
) -> None:
    train = load_competition_data(tiny_data).train
    broken = pd.read_csv(tiny_folds, dtype={ID_COL: str}).iloc[1:]
    path = tmp_path / "folds.csv"
    broken.to_csv(path, index=False)
    with pytest.raises(TableError, match="have no fold"):
        read_folds(path, train)


def test_pseudo_leaderboard_split_holds_out_whole_sites(real_train: pd.DataFrame) -> None:
    from kaggle_style.lb_check import pseudo_split

    kept, held = pseudo_split(real_train, share=0.2, seed=0)
    assert len(kept) + len(held) == len(real_train)
    assert not set(kept[SITE_COL]) & set(held[SITE_COL])
    assert 0.2 <= len(held) / len(real_train) < 0.35


@pytest.mark.heavy
def test_lb_check_scores_held_out_sites_with_and_without_site_adaptation(
    tiny_data: Path, tmp_path: Path
) -> None:
    from kaggle_style.lb_check import lb_check
    from kaggle_style.training.config import TrainConfig

    cfg = TrainConfig(
        data=str(tiny_data),
        backbone="test_resnet",
        image_size=32,
        epochs=1,
        batch_size=16,
        num_workers=0,
        progress=False,
        cache_dir=str(tmp_path / "cache"),
    )
    result = lb_check(cfg, share=0.25, n_splits=3, seed=0, work=tmp_path / "lb")
    held = pd.read_csv(tmp_path / "lb" / "data" / "held_out_labels.csv")
    assert result["held_out_images"] == len(held) > 0
    for key in (
        "local_oof_log_loss",
        "pseudo_lb_log_loss",
        "pseudo_lb_log_loss_site_off",
        "pseudo_lb_log_loss_site_on",
    ):
        assert 0 < result[key] < 10, key
    for mode in ("off", "on"):
        test = pd.read_csv(tmp_path / "lb" / f"ensemble_site_{mode}" / "test.csv")
        assert set(test[ID_COL]) == set(held[ID_COL])
    assert result["pseudo_lb_log_loss_site_on"] != result["pseudo_lb_log_loss_site_off"]


def test_folds_file_with_a_non_integer_fold_is_an_error(tiny_folds: Path, tmp_path: Path) -> None:
    broken = pd.read_csv(tiny_folds, dtype={ID_COL: str})
    broken[FOLD_COL] = broken[FOLD_COL].astype(object)
    broken.loc[2, FOLD_COL] = "one"
    path = tmp_path / "folds.csv"
    broken.to_csv(path, index=False)
    with pytest.raises(
        TableError,
        match=f"'fold' must hold whole numbers >= 0, not for ids {broken.loc[2, ID_COL]}",
    ):
        read_folds(path)
    assert read_folds(tiny_folds)[FOLD_COL].dtype == "int64"
