"""Each second-round lever on the demo, before and after: the nested OOF log loss (what the
project can know) beside the hidden test log loss (what the demo's generator knows, `truth.csv`).

`python -m benchmarks.levers --data data/demo` (`make levers`) trains what it needs through the
product's own `run_training` (finished folds are skipped), ensembles with the product's
`ensemble`, and prints one table: each model alone, then the ensemble with no lever, each lever
alone, and every lever together. A lever is one `Lever` entry: overrides of each model's recipe
(a second training round, its runs named `<model>-<lever>`) and of the ensemble config; an
ensemble key this checkout does not know yet is reported as absent, not guessed.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from kaggle_style.config import resolve_config
from kaggle_style.constants import ID_COL, LABEL_COL, TEST_FILE
from kaggle_style.files import write_json
from kaggle_style.metrics import log_loss
from kaggle_style.task import CONSERVISION_CLASS_INDEX as CLASS_INDEX
from kaggle_style.task import CONSERVISION_CLASSES as CLASSES


@dataclass(frozen=True)
class Lever:
    name: str  # also the suffix of its second-round runs
    train: dict[str, Any] = field(default_factory=dict)  # recipe overrides (a second round)
    ensemble: dict[str, Any] = field(default_factory=dict)  # ensemble config overrides


def levers(pseudo: dict[str, Any]) -> tuple[Lever, ...]:
    return (
        Lever("pseudo", train={"pseudo_labels": pseudo}),
        # the detection-aware stacking step (its key as the ensemble config names it)
        Lever("detection", ensemble={"detection_stacking": "auto"}),
    )


def hidden_labels(data: Path) -> pd.Series:
    """The test images' true classes (the demo's `truth.csv`), by id."""
    truth = pd.read_csv(data / "truth.csv", dtype={ID_COL: str})
    test = truth[truth["split"] == "test"]
    return test.set_index(ID_COL)[LABEL_COL].map(CLASS_INDEX)


def test_loss(run: Path, truth: pd.Series) -> float:
    frame = pd.read_csv(run / TEST_FILE, dtype={ID_COL: str}).set_index(ID_COL)
    return log_loss(truth.loc[frame.index].to_numpy(), frame[list(CLASSES)].to_numpy())


def train(model: str, lever: Lever | None, args: argparse.Namespace) -> Path:
    """One model's run (first round, or the lever's second round), trained if not yet."""
    from kaggle_style.training.config import TrainConfig
    from kaggle_style.training.run import run_training

    name = model if lever is None else f"{model}-{lever.name}"
    overrides = {
        "name": name,
        "data": str(args.data),
        "folds_file": str(args.folds),
        "runs_dir": str(args.runs),
        "cache_dir": str(args.cache),
        "crops_manifest": str(args.crops),
        "progress": False,
        **(lever.train if lever else {}),
    }
    run_training(resolve_config(TrainConfig, Path("configs") / f"{model}.yaml", overrides))
    return Path(args.runs) / name


def ensemble_row(
    runs: list[Path], extra: dict[str, Any], out: Path, args: argparse.Namespace, truth: pd.Series
) -> dict[str, Any]:
    from kaggle_style.ensemble.run import EnsembleConfig, ensemble

    cfg = resolve_config(
        EnsembleConfig,
        args.ensemble_config,
        {
            "runs": [str(r) for r in runs],
            "data": str(args.data),
            "out": str(out),
            "meta": str(args.meta),
            **extra,
            # the step needs the detector's boxes of the train and test images
            **(
                {"detections": str(Path(args.data) / "detections.json")}
                if "detection_stacking" in extra
                else {}
            ),
        },
    )
    result = ensemble(cfg)
    y = pd.read_csv(out / "oof.csv", dtype={ID_COL: str})
    labels = pd.read_csv(args.folds, dtype={ID_COL: str}).set_index(ID_COL)[LABEL_COL]
    y_true = labels.loc[y[ID_COL]].map(CLASS_INDEX).to_numpy()
    return {
        "nested_oof": None if result.nested is None else log_loss(y_true, result.nested),
        "in_sample_oof": log_loss(y_true, result.oof),
        "hidden_test": test_loss(out, truth),
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from kaggle_style.ensemble.run import EnsembleConfig

    truth = hidden_labels(Path(args.data))
    known = {f.name for f in dataclasses.fields(EnsembleConfig)}
    all_levers = levers(
        {
            "from": args.pseudo_from,
            "min_prob": args.min_prob,
            "weight": args.weight,
            "temperature": args.temperature,
        }
    )
    rows: list[dict[str, Any]] = []
    started = time.time()
    runs: dict[str | None, list[Path]] = {None: [train(m, None, args) for m in args.models]}
    for lever in (lv for lv in all_levers if lv.train):
        runs[lever.name] = [train(m, lever, args) for m in args.models]
    for lever_name, paths in runs.items():
        for path in paths:
            metrics = json.loads((path / "metrics.json").read_text())
            rows.append(
                {
                    "what": path.name,
                    "levers": [lever_name] if lever_name else [],
                    "nested_oof": metrics["overall"]["log_loss"],
                    "hidden_test": test_loss(path, truth),
                }
            )
    for n in range(len(all_levers) + 1):
        for chosen in itertools.combinations(all_levers, n):
            absent = sorted({k for lv in chosen for k in lv.ensemble} - known)
            names = [lv.name for lv in chosen]
            row: dict[str, Any] = {"what": "ensemble", "levers": names}
            if absent:
                rows.append(
                    {**row, "absent": f"ensemble key(s) {', '.join(absent)} not in this checkout"}
                )
                continue
            trained = [lv.name for lv in chosen if lv.train]
            members = runs[trained[0]] if trained else runs[None]  # one training lever so far
            extra = {k: v for lv in chosen for k, v in lv.ensemble.items()}
            out = Path(args.runs) / f"levers-ensemble-{'-'.join(names) or 'none'}"
            rows.append({**row, **ensemble_row(members, extra, out, args, truth)})
    return {
        "machine": f"{platform.node()} ({platform.machine()}, {_cpus()} CPUs, torch "
        f"threads {torch_threads()})",
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "seconds": round(time.time() - started),
        "pseudo_labels": all_levers[0].train["pseudo_labels"],
        "rows": rows,
    }


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _cpus() -> str:
    from kaggle_style.files import usable_cpus

    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in _cpuinfo().splitlines()
            if line.startswith("model name")
        ),
        "",
    )
    return f"{usable_cpus()} × {model}" if model else str(usable_cpus())


def _cpuinfo() -> str:
    path = Path("/proc/cpuinfo")
    return path.read_text() if path.is_file() else ""


def table(result: dict[str, Any]) -> str:
    lines = ["| what | levers | nested OOF log loss | hidden test log loss |", "|---|---|---|---|"]
    for row in result["rows"]:
        levers_text = " + ".join(row["levers"]) or "none"
        if "absent" in row:
            lines.append(f"| {row['what']} | {levers_text} | {row['absent']} | |")
            continue
        nested = "n/a" if row["nested_oof"] is None else f"{row['nested_oof']:.4f}"
        lines.append(f"| {row['what']} | {levers_text} | {nested} | {row['hidden_test']:.4f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # paths stay as spelt: folds_file and crops_manifest are part of a run's model hash, so
    # `./folds/folds.csv` (what make passes) must reach the config unnormalised to reuse its runs
    parser.add_argument("--data", default="data/demo")
    parser.add_argument("--folds", default="./folds/folds.csv")
    parser.add_argument("--crops", default="./crops/manifest.csv")
    parser.add_argument("--meta", default="data/demo/meta.csv")
    parser.add_argument("--runs", default="./runs")
    parser.add_argument("--cache", default="./cache")
    parser.add_argument("--models", nargs="+", default=["demo-crop", "demo-full"])
    parser.add_argument("--ensemble-config", type=Path, default=Path("configs/ensemble-demo.yaml"))
    parser.add_argument(
        "--pseudo-from",
        nargs="+",
        default=["demo-crop"],
        help="first-round runs whose fold-k models label the test images",
    )
    parser.add_argument("--min-prob", type=float, default=0.5)
    parser.add_argument("--weight", type=float, default=1.0)
    parser.add_argument("--temperature", type=float, default=0.5)
    parser.add_argument("--out", default="runs/levers.json")
    args = parser.parse_args(argv)
    truth = Path(args.data) / "truth.csv"
    if not truth.is_file():
        parser.error(
            f"{truth} not found: the levers need the demo's hidden test labels (make demo-data)"
        )
    result = measure(args)
    write_json(args.out, {**result, "table": table(result)})
    print(
        f"{result['machine']}, {result['date']}, {result['seconds']} s; pseudo-labels "
        f"{result['pseudo_labels']}"
    )
    print(table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
