"""Pseudo-labels: fold k's second round learns from the test images labelled without fold k.

Label randomisation, as for the ensemble steps: a first round and a second round are trained twice
on tiny data, once with fold K's true labels and once with them replaced at random. Fold K's
second-round OOF must not move (same seed, CPU: identical), while the first round's other folds
did move (the new labels reached them, so the test can see a leak). Positive control: a leaky
variant that takes the pooled test.csv (the mean of every fold's model, fold K's labels included)
moves fold K's OOF under the same randomisation, and the check catches it. Then the maths
(sharpening, threshold, weights through mixing and the loss) and the refusals, one line each.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from kaggle_style.config import ConfigError, resolve_config
from kaggle_style.constants import CONFIG_FILE, FOLD_COL, ID_COL, LABEL_COL, TEST_FILE
from kaggle_style.errors import UserError
from kaggle_style.files import write_csv, write_json, write_yaml
from kaggle_style.prediction_files import probs_of, read_predictions
from kaggle_style.task import CONSERVISION_CLASSES as CLASSES
from kaggle_style.training import pseudo_labels as pl
from kaggle_style.training.config import TrainConfig, model_hash
from kaggle_style.training.recipe import mix_batch, soft_cross_entropy

REPO = Path(__file__).resolve().parents[1]
FOLD = 1  # the fold whose labels are replaced
PSEUDO = {"from": "first", "min_prob": 0.0, "weight": 0.7, "temperature": 0.5}


def _config(data: Path, folds_file: Path, work: Path, name: str, **kw) -> TrainConfig:
    base = dict(
        name=name,
        data=str(data),
        folds_file=str(folds_file),
        runs_dir=str(work / "runs"),
        cache_dir=str(work / "cache"),
        epochs=1,
        progress=False,
        mixup_alpha=0.4,
    )
    return resolve_config(TrainConfig, REPO / "configs" / "tiny-cpu.yaml", {**base, **kw})


def _relabelled(data: Path, folds: Path, out: Path) -> tuple[Path, Path]:
    """A copy of the data whose fold-FOLD training labels are replaced (every one changes)."""
    shutil.copytree(data, out / "data")
    table = pd.read_csv(folds, dtype={ID_COL: str})
    rng = np.random.default_rng(7)
    rows = np.flatnonzero(table[FOLD_COL] == FOLD)
    old = table.loc[rows, LABEL_COL].map(CLASSES.index).to_numpy()
    table.loc[rows, LABEL_COL] = [
        CLASSES[(c + rng.integers(1, len(CLASSES))) % len(CLASSES)] for c in old
    ]
    write_csv(out / "folds.csv", table)
    onehot = pd.DataFrame({ID_COL: table[ID_COL]})
    for c in CLASSES:
        onehot[c] = (table[LABEL_COL] == c).astype(float)
    labels = pd.read_csv(data / "train_labels.csv", dtype={ID_COL: str})[[ID_COL]]
    write_csv(
        out / "data" / "train_labels.csv", labels.merge(onehot, on=ID_COL), float_format="%.1f"
    )
    return out / "data", out / "folds.csv"


def _second_round(data: Path, folds: Path, work: Path, name: str) -> pd.DataFrame:
    """Fold FOLD of a second-round run: its OOF rows."""
    from kaggle_style.training.run import run_training

    run_training(_config(data, folds, work, name, folds=[FOLD], pseudo_labels=PSEUDO))
    return read_predictions(work / "runs" / name / f"fold{FOLD}" / "oof.csv")


@pytest.fixture(scope="module")
def worlds(tiny_data: Path, tiny_folds: Path, tmp_path_factory) -> dict[str, tuple[Path, ...]]:
    """(data, folds, work) with the true labels and with fold FOLD's replaced; first round run."""
    from kaggle_style.training.run import run_training

    out = {"true": (tiny_data, tiny_folds, tmp_path_factory.mktemp("true"))}
    random_dir = tmp_path_factory.mktemp("random")
    out["random"] = (*_relabelled(tiny_data, tiny_folds, random_dir), random_dir)
    for data, folds, work in out.values():
        run_training(_config(data, folds, work, "first"))
    return out


def assert_fold_unchanged(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a[ID_COL]) == list(b[ID_COL])
    np.testing.assert_allclose(
        probs_of(a),
        probs_of(b),
        rtol=0,
        atol=1e-12,
        err_msg=f"fold {FOLD}'s OOF moved with fold {FOLD}'s labels",
    )


def test_fold_k_second_round_ignores_fold_k_labels(worlds):
    oof = {w: _second_round(*worlds[w], "second") for w in worlds}
    assert_fold_unchanged(oof["true"], oof["random"])
    # the randomisation reached the first round: the other folds' models (and test rows) moved
    other = next(k for k in range(3) if k != FOLD)
    tests = [
        read_predictions(worlds[w][2] / "runs" / "first" / f"fold{other}" / TEST_FILE)
        for w in worlds
    ]
    assert np.abs(probs_of(tests[0]) - probs_of(tests[1])).max() > 1e-4
    # and the second round really learned from the test images: not the first round's fold
    first = read_predictions(worlds["true"][2] / "runs" / "first" / f"fold{FOLD}" / "oof.csv")
    assert np.abs(probs_of(first) - probs_of(oof["true"])).max() > 1e-4


def test_pseudo_labels_from_a_model_that_saw_fold_k_are_caught(worlds, monkeypatch):
    def pooled(paths, fold):  # the mean over every fold's model: fold k's labels included
        return read_predictions(Path(paths[0]) / TEST_FILE)

    monkeypatch.setattr(pl, "fold_predictions", pooled)
    oof = {w: _second_round(*worlds[w], "leaky") for w in worlds}
    with pytest.raises(AssertionError, match="OOF moved"):
        assert_fold_unchanged(oof["true"], oof["random"])


# ------------------------------------------------------------------------- maths


def test_sharpening_and_threshold():
    p = np.array([[0.6, 0.3, 0.1] + [0.0] * 5, [0.3, 0.3, 0.4] + [0.0] * 5])
    np.testing.assert_allclose(pl.sharpen(p, 1.0), p, atol=1e-12)
    squared = p**2 / (p**2).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(pl.sharpen(p, 0.5), squared, atol=1e-12)
    assert pl.sharpen(p, 1e-3)[0, 0] == pytest.approx(1.0)
    # the threshold reads the sources' probability, before sharpening: 0.4 < 0.5 <= 0.6
    keep, soft = pl.select(p, {"min_prob": 0.5, "temperature": 0.5})
    assert keep.tolist() == [0]
    np.testing.assert_allclose(soft, squared[:1], atol=1e-12)
    vectors = pl.weighted(soft, 0.7)
    assert vectors.shape == (1, len(CLASSES) + 1) and vectors[0, -1] == pytest.approx(0.7)


def test_weights_scale_the_loss_and_mix_like_the_targets():
    torch.manual_seed(0)
    logits = torch.randn(3, len(CLASSES))
    soft = torch.softmax(torch.randn(3, len(CLASSES)), dim=1)
    w = torch.tensor([1.0, 0.25, 2.0])
    class_w = torch.linspace(0.5, 1.5, len(CLASSES))
    vectors = torch.cat([soft, w[:, None]], dim=1)
    loss = soft_cross_entropy(logits, *pl.split_weights(vectors, class_w))
    ce = -(soft * torch.log_softmax(logits, dim=1)).sum(dim=1)
    row_w = w * (soft * class_w).sum(dim=1)
    assert loss.item() == pytest.approx(((ce * row_w).sum() / row_w.sum()).item(), rel=1e-6)
    # class-index batches keep the one-vector path untouched
    assert pl.split_weights(soft, class_w)[1] is class_w
    cfg = TrainConfig(mixup_alpha=0.4)
    images = torch.randn(3, 3, 4, 4)
    _, mixed = mix_batch(images, vectors, cfg, np.random.default_rng(1))
    again = np.random.default_rng(1)
    again.random()
    lam = float(again.beta(0.4, 0.4))
    perm = torch.from_numpy(again.permutation(3))
    expected = w * lam + w[perm] * (1 - lam)
    torch.testing.assert_close(mixed[:, -1], expected)
    torch.testing.assert_close(mixed[:, :-1].sum(dim=1), torch.ones(3))


def test_labelled_vectors_smooth_and_weigh_one():
    v = pl.labelled_vectors(np.array([2]), 0.08, 8)
    assert v[0, 2] == pytest.approx(0.92 + 0.01) and v[0, 0] == pytest.approx(0.01)
    assert v[0, -1] == 1.0


# ------------------------------------------------------------------------- refusals


def _fake_run(
    path: Path, folds: Path, test_ids: list[str], n_folds: int = 3, folds_hash: str | None = None
) -> Path:
    """A finished model run on disk (no training): per-fold files first, then combined ones."""
    table = pd.read_csv(folds, dtype={ID_COL: str})
    flat = np.full((len(test_ids), len(CLASSES)), 1 / len(CLASSES))
    test = pd.DataFrame({ID_COL: test_ids, **{c: flat[:, i] for i, c in enumerate(CLASSES)}})
    for k in range(n_folds):
        part = table[table[FOLD_COL] == k]
        oof = pd.DataFrame(
            {ID_COL: part[ID_COL], **{c: 1 / len(CLASSES) for c in CLASSES}, FOLD_COL: k}
        )
        write_csv(path / f"fold{k}" / "oof.csv", oof)
        write_csv(path / f"fold{k}" / TEST_FILE, test)
        write_json(path / f"fold{k}" / "done.json", {"model_hash": "abc"})
    oof = pd.DataFrame(
        {ID_COL: table[ID_COL], **{c: 1 / len(CLASSES) for c in CLASSES}, FOLD_COL: table[FOLD_COL]}
    )
    write_csv(path / "oof.csv", oof)
    write_csv(path / TEST_FILE, test)
    write_yaml(
        path / CONFIG_FILE,
        {"model_hash": "abc", pl.FOLDS_HASH_KEY: folds_hash or pl.file_sha256(folds)},
    )
    return path


@pytest.fixture()
def test_ids(tiny_data: Path) -> list[str]:
    return pd.read_csv(tiny_data / "test_features.csv", dtype={ID_COL: str})[ID_COL].tolist()


def _check(tmp_path: Path, folds: Path, source: str) -> list[Path]:
    return pl.check_sources({"from": [source]}, tmp_path, tmp_path / "second", folds)


def test_an_honest_source_passes_and_a_blend_of_two_averages(tmp_path, tiny_folds, test_ids):
    a = _fake_run(tmp_path / "a", tiny_folds, test_ids)
    b = _fake_run(tmp_path / "b", tiny_folds, test_ids)
    frame = pd.read_csv(b / "fold1" / TEST_FILE, dtype={ID_COL: str})
    frame[list(CLASSES)] = np.eye(len(CLASSES))[np.arange(len(frame)) % len(CLASSES)]
    write_csv(b / "fold1" / TEST_FILE, frame)
    assert pl.check_sources({"from": ["a", "b"]}, tmp_path, tmp_path / "x", tiny_folds) == [a, b]
    mean = pl.fold_predictions([a, b], 1)
    assert probs_of(mean)[0].max() == pytest.approx(0.5 + 0.5 / len(CLASSES))


@pytest.mark.parametrize(
    "case, message",
    [
        ("ensemble", r"^pseudo_labels.from \S+/ens: has no fold<k> folders \(an ensemble's pooled"),
        ("file", r"^pseudo_labels.from \S+/ens/test.csv: is a file; pooled test predictions"),
        ("absent", r"^pseudo_labels.from \S+/nothing: no such run folder; train it first"),
        ("missing fold", r"^pseudo_labels.from \S+/a: lacks fold\(s\) \[2\]"),
        (
            "other folds",
            r"^pseudo_labels.from \S+/a: trained on another folds file \(content sha256",
        ),
        ("itself", r"^pseudo_labels.from \S+/second: is this run itself"),
    ],
)
def test_sources_that_cannot_be_nested_are_refused_in_one_line(
    tmp_path, tiny_folds, test_ids, case, message
):
    ens = tmp_path / "ens"
    write_csv(ens / TEST_FILE, pd.DataFrame({ID_COL: test_ids, **dict.fromkeys(CLASSES, 0.125)}))
    source = {
        "ensemble": "ens",
        "file": str(ens / TEST_FILE),
        "absent": "nothing",
        "missing fold": "a",
        "other folds": "a",
        "itself": "second",
    }[case]
    if case == "missing fold":
        _fake_run(tmp_path / "a", tiny_folds, test_ids, n_folds=2)
    if case == "other folds":
        _fake_run(tmp_path / "a", tiny_folds, test_ids, folds_hash="0" * 64)
    if case == "itself":
        _fake_run(tmp_path / "second", tiny_folds, test_ids)
    with pytest.raises(UserError, match=message) as err:
        _check(tmp_path, tiny_folds, source)
    assert "\n" not in str(err.value)


def test_a_source_without_a_recorded_folds_hash_is_compared_by_its_oof_folds(
    tmp_path, tiny_folds, test_ids
):
    run = _fake_run(tmp_path / "a", tiny_folds, test_ids)
    config = yaml.safe_load((run / CONFIG_FILE).read_text())
    del config[pl.FOLDS_HASH_KEY]
    write_yaml(run / CONFIG_FILE, config)
    _check(tmp_path, tiny_folds, "a")  # same assignment: accepted
    moved = pd.read_csv(tiny_folds, dtype={ID_COL: str})
    moved[FOLD_COL] = (moved[FOLD_COL] + 1) % 3
    write_csv(tmp_path / "moved.csv", moved)
    with pytest.raises(UserError, match=r"a: its folds differ from \S+moved.csv"):
        _check(tmp_path, tmp_path / "moved.csv", "a")


def test_bad_config_values_are_one_line():
    for value, message in [
        ({"from": "a", "min_prob": 2}, r"pseudo_labels.min_prob: .*less than"),
        ({"form": "a"}, r"pseudo_labels.form: Extra inputs"),
        ({"from": "a", "temperature": 0}, r"pseudo_labels.temperature"),
        ("a", r"pseudo_labels: expected a mapping"),
    ]:
        with pytest.raises(ConfigError, match=message) as err:
            TrainConfig(pseudo_labels=value)
        assert "\n" not in str(err.value)


def test_the_model_hash_covers_the_source_predictions(tmp_path, tiny_folds, test_ids):
    _fake_run(tmp_path / "a", tiny_folds, test_ids)
    cfg = TrainConfig(runs_dir=str(tmp_path), pseudo_labels={"from": "a"})
    before = model_hash(cfg)
    assert model_hash(TrainConfig()) != before
    assert (
        model_hash(TrainConfig(runs_dir=str(tmp_path), pseudo_labels={"from": "a", "weight": 0.5}))
        != before
    )
    frame = pd.read_csv(tmp_path / "a" / "fold2" / TEST_FILE, dtype={ID_COL: str})
    frame[list(CLASSES)] = np.eye(len(CLASSES))[np.zeros(len(frame), dtype=int)]
    write_csv(tmp_path / "a" / "fold2" / TEST_FILE, frame)
    assert model_hash(cfg) != before, "a retrained source must retrain the second round"
    assert model_hash(TrainConfig()) == model_hash(TrainConfig(pseudo_labels=None))


def test_make_prerequisites_name_the_source_runs(tmp_path):
    config = tmp_path / "second.yaml"
    config.write_text(
        yaml.safe_dump({"backbone": "test_resnet", "pseudo_labels": {"from": ["a", "elsewhere/b"]}})
    )
    assert pl.prerequisites(config, "out/runs") == ["out/runs/a/oof.csv", "elsewhere/b/oof.csv"]
    config.write_text("backbone: test_resnet\n")
    assert pl.prerequisites(config, "out/runs") == []
    json.dumps(pl.check_pseudo_labels({"from": "a"}))  # plain data: hashed and written as YAML
