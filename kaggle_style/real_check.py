"""`make real-check`: does pretraining help on REAL camera-trap images? (issue 9)

Trains one recipe twice on the camtrapR thumbnails (67 labelled images, 5 species, 3
stations): from the real ImageNet weights of tf_efficientnet_lite0 and from random weights,
with stratified 3-fold CV (three species live at one station only, so stations cannot be
folds). The pretrained OOF log loss must beat both the random-init one and the class prior;
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

from kaggle_style.constants import CLASSES, ID_COL, LABEL_COL, OOF_FILE
from kaggle_style.io import write_csv

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
WEIGHTS = "models/tf_efficientnet_lite0.in1k.safetensors"
# Not yet tuned: on this recipe pretrained beats random but NOT the prior (see the report).
RECIPE: dict[str, Any] = dict(
    backbone="tf_efficientnet_lite0", image_size=128, epochs=6, batch_size=16, lr=1e-3,
    head_lr_mult=10.0, freeze_epochs=1, weight_decay=0.01, augment="light", tta_hflip=True,
    view="full", num_workers=0, progress=False, seed=0,
)


def build_camtrapr_data(source: Path, out: Path) -> dict[str, str]:
    """Write a DrivenData-style folder (ids, filepaths, site = station); return species->class."""
    paths = sorted(p for p in source.glob("*/*/*") if p.suffix.lower() == ".jpg"
                   and p.parent.name != "UNID")
    species = sorted({p.parent.name for p in paths})
    mapping = dict(zip(species, CLASSES[: len(species)], strict=True))
    ids = [f"CT{k:04d}" for k in range(len(paths))]
    features = pd.DataFrame({ID_COL: ids, "filepath": [str(p.resolve()) for p in paths],
                             "site": [p.parent.parent.name for p in paths]})
    labels = pd.DataFrame(0.0, index=range(len(paths)), columns=list(CLASSES))
    for row, p in enumerate(paths):
        labels.loc[row, mapping[p.parent.name]] = 1.0
    labels.insert(0, ID_COL, ids)
    write_csv(out / "train_features.csv", features)
    write_csv(out / "train_labels.csv", labels)
    return mapping


def real_check(shared: Path, work: Path) -> dict[str, float]:
    """Train pretrained and random-init runs; return prior and both OOF log losses."""
    from kaggle_style.data.tables import load_dataset
    from kaggle_style.folds import make_folds
    from kaggle_style.metrics import log_loss
    from kaggle_style.train import TrainConfig, run_training

    data = work / "camtrapr_data"
    mapping = build_camtrapr_data(shared / "camtrapr", data)
    print("species -> class slot: " + ", ".join(f"{s} -> {c}" for s, c in mapping.items()))
    train = load_dataset(data).train
    folds = make_folds(train, n_splits=3, seed=0, group_by="none")
    write_csv(work / "folds.csv", folds)
    index = {c: i for i, c in enumerate(CLASSES)}
    y_of = dict(zip(folds[ID_COL], folds[LABEL_COL].map(index), strict=True))
    present = sorted(set(y_of.values()))
    counts = np.bincount(list(y_of.values()), minlength=len(CLASSES))[present]
    prior = counts / counts.sum()
    results = {"prior_logloss": float(-(prior * np.log(prior)).sum())}
    for name, pretrained in (("random", False), ("pretrained", str(shared / WEIGHTS))):
        cfg = TrainConfig(name=name, data=str(data), folds_file=str(work / "folds.csv"),
                          runs_dir=str(work / "runs"), cache_dir=str(work / "cache"),
                          pretrained=pretrained, **RECIPE)
        run_training(cfg)
        oof = pd.read_csv(cfg.run_dir / OOF_FILE, dtype={ID_COL: str})
        y = np.array([y_of[i] for i in oof[ID_COL]])
        results[f"oof_logloss_{name}"] = float(log_loss(y, oof[list(CLASSES)].to_numpy()))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kaggle_style.real_check",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=SHARED, help="the shared data folder")
    parser.add_argument("--work", type=Path, help="work folder (default: a temporary one)")
    args = parser.parse_args(argv)
    if not (args.shared / "camtrapr").is_dir():
        parser.error(f"{args.shared}/camtrapr not found: the real data must sit beside the repo")
    with tempfile.TemporaryDirectory(prefix="real_check_") as tmp:
        results = real_check(args.shared, args.work or Path(tmp))
    print(f"{'baseline':<12} {'OOF log loss':>12}")
    for key in ("prior_logloss", "oof_logloss_random", "oof_logloss_pretrained"):
        print(f"{key.split('_')[-1] if key != 'prior_logloss' else 'prior':<12} "
              f"{results[key]:>12.4f}")
    ok = results["oof_logloss_pretrained"] < min(results["prior_logloss"],
                                                 results["oof_logloss_random"])
    print("pretrained beats prior and random: " + ("yes" if ok else "NO"))
    print(json.dumps(results))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
