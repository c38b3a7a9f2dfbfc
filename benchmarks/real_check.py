"""`python -m benchmarks.real_check`: does pretraining help on REAL camera-trap images?

Trains one recipe on the camtrapR thumbnails (67 labelled images, 5 species, 3 stations): from
the real ImageNet weights of tf_efficientnet_lite0 and from random weights (see RUNS), with
stratified 3-fold CV (three species live at one station only, so stations cannot be
folds). The pretrained OOF log loss must beat the random-init ones and the class prior;
synthetic demo data cannot show this, real images can.

Our trainer has the 8 Conser-vision class columns, so camtrapR's 5 species are mapped in
alphabetical order onto CLASSES[:5] (printed); the other 3 classes get no samples. The prior
baseline uses the 5 present classes' frequencies.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.common import run_main, shared_data
from kaggle_style.constants import ID_COL, LABEL_COL, OOF_FILE
from kaggle_style.errors import UserError
from kaggle_style.files import write_csv
from kaggle_style.task import CONSERVISION_CLASS_INDEX as CLASS_INDEX
from kaggle_style.task import CONSERVISION_CLASSES as CLASSES

WEIGHTS = "models/tf_efficientnet_lite0.in1k.safetensors"
# A small-data fine-tuning recipe: the thumbnails upsampled to the backbone's 224 px, two
# head-only epochs, then everything at a low rate with BatchNorm statistics kept from ImageNet
# (batches of 16 near-identical night frames make poor statistics).
RECIPE: dict[str, Any] = dict(
    backbone="tf_efficientnet_lite0",
    image_size=224,
    epochs=12,
    batch_size=16,
    lr=3e-4,
    head_lr_mult=10.0,
    freeze_epochs=2,
    freeze_bn=True,
    label_smoothing=0.1,
    weight_decay=0.01,
    augment="light",
    tta_hflip=True,
    view="full",
    num_workers=0,
    progress=False,
    seed=0,
)
# From random weights, a frozen warm-up and frozen BatchNorm would freeze random features and
# initial statistics; so random weights are run twice: the very same recipe, and the recipe with
# those two pretrained-only steps off (the fair from-scratch baseline).
RUNS: dict[str, dict[str, Any]] = {
    "random_same_recipe": dict(pretrained=False),
    "random": dict(pretrained=False, freeze_epochs=0, freeze_bn=False),
    "pretrained": dict(pretrained=WEIGHTS),
    # the GPU data-path lever must not cost accuracy: flips and jitter on the device
    "pretrained_device_augment": dict(pretrained=WEIGHTS, augment_on="device"),
}


def build_camtrapr_data(source: Path, out: Path) -> dict[str, str]:
    """Write a DrivenData-style folder (ids, filepaths, site = station); return species->class."""
    paths = sorted(
        p for p in source.glob("*/*/*") if p.suffix.lower() == ".jpg" and p.parent.name != "UNID"
    )
    species = sorted({p.parent.name for p in paths})
    mapping = dict(zip(species, CLASSES[: len(species)], strict=True))
    ids = [f"CT{k:04d}" for k in range(len(paths))]
    features = pd.DataFrame(
        {
            ID_COL: ids,
            "filepath": [str(p.resolve()) for p in paths],
            "site": [p.parent.parent.name for p in paths],
        }
    )
    labels = pd.DataFrame(0.0, index=range(len(paths)), columns=list(CLASSES))
    for row, p in enumerate(paths):
        labels.loc[row, mapping[p.parent.name]] = 1.0
    labels.insert(0, ID_COL, ids)
    write_csv(out / "train_features.csv", features)
    write_csv(out / "train_labels.csv", labels)
    return mapping


def prior_log_loss(y: np.ndarray, n_classes: int) -> float:
    """The log loss of predicting every image's class by the present classes' frequencies: the
    baseline any trained model must beat (the entropy of the label distribution)."""
    counts = np.bincount(y, minlength=n_classes)
    prior = counts[counts > 0] / len(y)
    return float(-(prior * np.log(prior)).sum())


def real_check(
    shared: Path, work: Path, runs: tuple[str, ...] = tuple(RUNS), seed: int = RECIPE["seed"]
) -> dict[str, Any]:
    """Train `runs` of RUNS; return the prior's and each run's OOF log loss, and a predict
    check (on the `pretrained` run's models, which `runs` must then hold)."""
    from kaggle_style.data.folds import make_folds
    from kaggle_style.data.tables import load_competition_data
    from kaggle_style.metrics import log_loss
    from kaggle_style.training.config import TrainConfig
    from kaggle_style.training.run import run_training

    data = work / "camtrapr_data"
    mapping = build_camtrapr_data(shared / "camtrapr", data)
    print("species -> class slot: " + ", ".join(f"{s} -> {c}" for s, c in mapping.items()))
    # the thumbnails stay where they are in the shared folder: never copied into the work folder
    train = load_competition_data(data, allow_outside_data=True).train
    folds = make_folds(train, n_splits=3, seed=0, group_by="none")
    write_csv(work / "folds.csv", folds)
    y_of = dict(zip(folds[ID_COL], folds[LABEL_COL].map(CLASS_INDEX), strict=True))
    results = {"prior_logloss": prior_log_loss(np.array(list(y_of.values())), len(CLASSES))}
    for name in runs:
        recipe = {**RECIPE, **RUNS[name], "seed": seed}
        if recipe["pretrained"]:
            recipe["pretrained"] = str(shared / recipe["pretrained"])
        cfg = TrainConfig(
            name=name,
            data=str(data),
            folds_file=str(work / "folds.csv"),
            allow_outside_data=True,
            runs_dir=str(work / "runs"),
            cache_dir=str(work / "cache"),
            **recipe,
        )
        run_training(cfg)
        oof = pd.read_csv(cfg.run_dir / OOF_FILE, dtype={ID_COL: str})
        y = np.array([y_of[i] for i in oof[ID_COL]])
        results[f"oof_logloss_{name}"] = float(log_loss(y, oof[list(CLASSES)].to_numpy()))
    if "pretrained" in runs:
        results["predict_stations"] = predict_stations(shared / "camtrapr", work, mapping)
    return results


def predict_stations(source: Path, work: Path, mapping: dict[str, str]) -> dict[str, float]:
    """`predict --site-from-folder` on the camtrapR folders with the pretrained run.

    An end-to-end check of the deployment path (stations as sites, every image, the UNID one
    too), not an estimate: each image was in the training set of two of the three fold models.
    Returns the top-1 agreement with the species folder per station.
    """
    from kaggle_style.deployment import DetectorChoice, run_predict

    out = work / "predict_camtrapr.csv"
    frame = run_predict(
        source,
        work / "runs" / "pretrained",
        out,
        site_from_folder=True,
        detector=DetectorChoice(enabled=False),
        progress=False,
    )
    species = frame["file"].str.split("/").str[1]
    labelled = species.isin(list(mapping))
    hits = frame["top_class"][labelled] == species[labelled].map(mapping)
    per_station = hits.groupby(frame["site"][labelled]).mean()
    print(
        f"predict --site-from-folder: {len(frame)} images, {frame['site'].nunique()} stations "
        f"-> {out.name}; top-1 = species folder: "
        + ", ".join(f"{s} {v:.2f}" for s, v in per_station.items())
    )
    return {str(s): float(v) for s, v in per_station.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.real_check", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--shared",
        help="the shared real-data folder, holding camtrapr/ and "
        "models/ (default: $KAGGLE_STYLE_SHARED_DATA)",
    )
    parser.add_argument("--work", type=Path, help="work folder (default: a temporary one)")
    parser.add_argument(
        "--runs",
        nargs="+",
        choices=tuple(RUNS),
        default=tuple(RUNS),
        help="which runs (default: all); the verdict needs pretrained and a baseline",
    )
    parser.add_argument("--seed", type=int, default=RECIPE["seed"], help="the recipe's seed")
    args = parser.parse_args(argv)
    return run_main(parser.prog, lambda: run(args))


def run(args: argparse.Namespace) -> int:
    shared = shared_data(args.shared)
    if not (shared / "camtrapr").is_dir():
        raise UserError(
            f"{shared / 'camtrapr'} not found: --shared (or $KAGGLE_STYLE_SHARED_DATA) "
            "must name the shared data folder that holds camtrapr/"
        )
    with tempfile.TemporaryDirectory(prefix="real_check_") as tmp:
        results = real_check(shared, args.work or Path(tmp), tuple(args.runs), args.seed)
    print(f"{'run':<26} {'OOF log loss':>12}")
    print(f"{'class prior':<26} {results['prior_logloss']:>12.4f}")
    for name in args.runs:
        print(f"{name:<26} {results[f'oof_logloss_{name}']:>12.4f}")
    ok = True
    if "pretrained" in args.runs:
        baselines = [
            "prior_logloss",
            *(f"oof_logloss_{n}" for n in args.runs if n.startswith("random")),
        ]
        ok = results["oof_logloss_pretrained"] < min(results[k] for k in baselines)
        beaten = "the prior" + (" and every random-weights run" if len(baselines) > 1 else "")
        print(f"pretrained beats {beaten}: " + ("yes" if ok else "NO"))
    print(json.dumps(results))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
