"""Pseudo-labels for a second training round, nested-honest.

Fold k's second-round model also learns from the test images, labelled by models that never saw
fold k's labels: each source run's own fold-k model (its `fold<k>/test.csv`), averaged over the
source runs, kept where the average's top probability reaches `min_prob`, sharpened by
`temperature`, and weighted by `weight` in the loss. A pooled test.csv (an ensemble's, or a run's
mean over folds) was made by models that saw fold k's labels, so it is refused: fold k's OOF
would be optimistic. No torch here: `training.config` hashes the source through this module.

`python -m kaggle_style.training.pseudo_labels CONFIG --runs-dir R` prints the source runs'
`oof.csv` paths: the Makefile's prerequisites of a second-round run.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kaggle_style.config import ConfigError, read_yaml
from kaggle_style.constants import CONFIG_FILE, FOLD_COL, ID_COL, OOF_FILE, TEST_FILE
from kaggle_style.errors import NAME_SEPARATORS, UserError, check_name
from kaggle_style.prediction_files import align, classes_of, probs_of, read_predictions
from kaggle_style.run_contract import check_run, fold_dirs, read_done

if TYPE_CHECKING:
    import torch

FOLDS_HASH_KEY = "folds_sha256"  # written into a run's config.yaml: which folds it was trained on
EXAMPLE = "pseudo_labels: {from: demo-crop, min_prob: 0.5, weight: 1.0, temperature: 0.5}"


class PseudoLabels(BaseModel):
    """The `pseudo_labels:` key of a recipe."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    # run folders (a bare name is a run under runs_dir); several: their fold-k models averaged
    sources: tuple[str, ...] = Field(alias="from", min_length=1)
    min_prob: float = Field(0.5, ge=0.0, le=1.0)  # keep a test image when the sources' top
    # probability (before sharpening) is at least this
    weight: float = Field(1.0, gt=0.0, le=100.0)  # a pseudo-labelled image's weight in the loss
    temperature: float = Field(0.5, gt=0.0, le=100.0)  # < 1 sharpens, 1 keeps the probabilities

    @field_validator("sources", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("sources")
    @classmethod
    def _names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_source_name(s) for s in value)

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": list(self.sources),
            "min_prob": self.min_prob,
            "weight": self.weight,
            "temperature": self.temperature,
        }


def check_pseudo_labels(value: Any) -> dict[str, Any] | None:
    """The config value checked and completed with defaults (plain data, hashed as such)."""
    if value is None:
        return None
    if isinstance(value, PseudoLabels):
        return value.as_dict()
    if not isinstance(value, dict):
        raise ConfigError(
            f"pseudo_labels: expected a mapping, got {value!r}; e.g. {EXAMPLE}", key="pseudo_labels"
        )
    try:
        return PseudoLabels.model_validate(value).as_dict()
    except ValidationError as err:
        errors = err.errors()  # a misspelt key first: "from: Field required" follows from it
        first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        where = ".".join(str(p) for p in first["loc"]) or "pseudo_labels"
        raise ConfigError(
            f"pseudo_labels.{where}: {first['msg']} (got {first.get('input')!r}); e.g. {EXAMPLE}",
            key="pseudo_labels",
        ) from None


def source_paths(spec: dict[str, Any], runs_dir: str | Path) -> list[Path]:
    """Each source run's folder: a bare name lives under runs_dir, anything else is a path."""
    return [Path(runs_dir) / s if len(Path(s).parts) == 1 else Path(s) for s in spec["from"]]


def _source_name(value: str) -> str:
    """A source without a path separator is a run name under runs_dir: `errors.check_name`."""
    if not any(sep in value for sep in NAME_SEPARATORS):
        try:
            check_name(value, "run")
        except UserError as err:
            raise ValueError(str(err)) from None
    return value


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def source_hash(spec: dict[str, Any], runs_dir: str | Path) -> str:
    """A hash of the per-fold test predictions the second round learns from: a retrained source
    changes it, so the second round's model hash changes and its folds retrain."""
    digest = hashlib.sha256()
    for path in source_paths(spec, runs_dir):
        files = sorted(p / TEST_FILE for p in fold_dirs(path) if (p / TEST_FILE).is_file())
        if not files:
            _refuse_shape(path)
        for file in files:
            digest.update(f"{file.parent.name}\0".encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def check_sources(
    spec: dict[str, Any], runs_dir: str | Path, run_dir: Path, folds_file: str | Path
) -> list[Path]:
    """The source runs, after every check that makes fold k's pseudo-labels independent of fold
    k's labels; any failure is one line naming the source and what to do."""
    folds = pd.read_csv(folds_file, dtype={ID_COL: str}, usecols=[ID_COL, FOLD_COL])
    wanted = sorted(folds[FOLD_COL].astype(int).unique().tolist())
    mine = file_sha256(folds_file)
    paths = source_paths(spec, runs_dir)
    for path in paths:
        where = f"pseudo_labels.from {path}"
        if path.resolve() == Path(run_dir).resolve():
            raise UserError(f"{where}: is this run itself; name the first-round run")
        _refuse_shape(path)
        missing = [
            k
            for k in wanted
            if read_done(path / f"fold{k}") is None or not (path / f"fold{k}" / TEST_FILE).is_file()
        ]
        if missing:
            raise UserError(
                f"{where}: lacks fold(s) {missing} (their fold<k>/test.csv), and fold "
                "k may learn only from fold k's own model; train every fold of it"
            )
        check_run(path)
        saved = (
            (yaml.safe_load((path / CONFIG_FILE).read_text()) or {}).get(FOLDS_HASH_KEY)
            if (path / CONFIG_FILE).is_file()
            else None
        )
        if saved is not None and saved != mine:
            raise UserError(
                f"{where}: trained on another folds file (content sha256 "
                f"{saved[:12]}, {folds_file} is {mine[:12]}): its fold k is not fold k "
                f"here; retrain it on {folds_file}"
            )
        if saved is None:
            _same_assignment(path, folds, folds_file, where)
    return paths


def _refuse_shape(path: Path) -> None:
    """Only a model run folder keeps each fold's own test predictions."""
    where = f"pseudo_labels.from {path}"
    if path.is_file():
        raise UserError(
            f"{where}: is a file; pooled test predictions come from models that saw "
            "every fold's labels: name a model run folder (its fold<k>/test.csv)"
        )
    if not path.is_dir():
        raise UserError(f"{where}: no such run folder; train it first (make {path / OOF_FILE})")
    if not fold_dirs(path):
        raise UserError(
            f"{where}: has no fold<k> folders (an ensemble's pooled test.csv came from "
            "models that saw every fold's labels); name the model runs it blends"
        )


def _same_assignment(path: Path, folds: pd.DataFrame, folds_file: str | Path, where: str) -> None:
    """A run from before folds hashes were recorded: its OOF file says which fold each id was in."""
    oof = pd.read_csv(path / OOF_FILE, dtype={ID_COL: str}, usecols=[ID_COL, FOLD_COL])
    merged = folds.merge(oof, on=ID_COL, how="outer", suffixes=("", "_source"))
    if merged[FOLD_COL].isna().any() or (merged[FOLD_COL] != merged[f"{FOLD_COL}_source"]).any():
        raise UserError(
            f"{where}: its folds differ from {folds_file}: its fold k is not fold k "
            f"here; retrain it on {folds_file}"
        )


def sharpen(probs: np.ndarray, temperature: float) -> np.ndarray:
    """p^(1/T), renormalised (in log space, so small T neither under- nor overflows)."""
    with np.errstate(divide="ignore"):
        logits = np.log(np.asarray(probs, dtype=np.float64)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    out = np.exp(logits)
    return out / out.sum(axis=1, keepdims=True)


def select(probs: np.ndarray, spec: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(kept rows, their sharpened targets): rows whose top probability reaches min_prob."""
    keep = np.flatnonzero(np.asarray(probs).max(axis=1) >= spec["min_prob"])
    return keep, sharpen(np.asarray(probs)[keep], spec["temperature"])


def fold_predictions(paths: Sequence[Path], fold: int) -> pd.DataFrame:
    """The mean of the source runs' fold-k test predictions: models that never saw fold k."""
    frames = {str(p): read_predictions(p / f"fold{fold}" / TEST_FILE) for p in paths}
    aligned = align(frames, check_folds=False)
    first = next(iter(aligned.values()))
    classes = classes_of(first)
    mean = sum(probs_of(f, classes) for f in aligned.values()) / len(aligned)
    out = pd.DataFrame({ID_COL: first[ID_COL].to_numpy()})
    out[list(classes)] = mean
    return out


def fold_targets(
    spec: dict[str, Any], runs_dir: str | Path, fold: int, test_ids: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """(test ids kept, target vectors: sharpened probabilities then the loss weight) for fold k."""
    probs = fold_predictions(source_paths(spec, runs_dir), fold)
    lacking = sorted(set(test_ids) - set(probs[ID_COL]))
    if lacking:
        raise UserError(
            f"pseudo_labels.from {spec['from']}: fold {fold}'s test predictions lack "
            f"{len(lacking)} test id(s), e.g. {lacking[:3]}; was it trained on this "
            "data folder?"
        )
    probs = probs.set_index(ID_COL).loc[list(test_ids)]
    keep, soft = select(probs.to_numpy(), spec)
    return probs.index.to_numpy()[keep], weighted(soft, spec["weight"])


def check_targets(
    spec: dict[str, Any], runs_dir: str | Path, folds: Sequence[int], test_ids: Sequence[str]
) -> None:
    """Before any work: every fold to train keeps some test image. Where `min_prob` keeps none,
    the second round would be a first round under another name, so it is refused."""
    unique = list(dict.fromkeys(test_ids))
    if not unique:
        raise UserError(
            "pseudo_labels: the data folder has no test images to learn from; remove "
            "the pseudo_labels key"
        )
    for fold in folds:
        if not len(fold_targets(spec, runs_dir, fold, unique)[0]):
            top = probs_of(fold_predictions(source_paths(spec, runs_dir), fold))
            raise UserError(
                f"pseudo_labels.min_prob: {spec['min_prob']} keeps none of the {len(unique)} "
                f"test images in fold {fold} (its sources' top probability reaches "
                f"{top.max(axis=1).max():.3f} at most); lower min_prob, or remove the key"
            )


def weighted(soft: np.ndarray, weight: float | np.ndarray) -> np.ndarray:
    """Target vectors as the training dataset returns them: the class probabilities, then the
    sample's loss weight (a column, so mixup and cutmix mix it like the targets)."""
    weights = np.broadcast_to(np.asarray(weight, dtype=np.float32), (len(soft),))
    return np.concatenate([np.asarray(soft, dtype=np.float32), weights[:, None]], axis=1)


def labelled_vectors(labels: np.ndarray, smoothing: float, num_classes: int) -> np.ndarray:
    """Labelled samples as target vectors: one-hot with label smoothing, weight 1."""
    soft = np.eye(num_classes, dtype=np.float32)[np.asarray(labels, dtype=int)]
    return weighted(soft * (1 - smoothing) + smoothing / num_classes, 1.0)


def split_weights(
    targets: torch.Tensor, class_weights: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(targets, weights) for the loss: a target vector's last column is its sample's weight,
    which scales the class weights row by row (the loss takes either shape)."""
    if targets.shape[1] == len(class_weights):
        return targets, class_weights
    return targets[:, :-1], class_weights * targets[:, -1:]


def prerequisites(config: str | Path, runs_dir: str | Path) -> list[str]:
    """The source runs' oof.csv files a recipe's second round needs (none without the key)."""
    spec = check_pseudo_labels(read_yaml(config).get("pseudo_labels"))
    return [] if spec is None else [str(p / OOF_FILE) for p in source_paths(spec, runs_dir)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--runs-dir", default="runs")
    args = parser.parse_args(argv)
    print(" ".join(prerequisites(args.config, args.runs_dir)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
