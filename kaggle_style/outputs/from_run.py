"""A run's competition test predictions as a `Classified`: `test.csv` (model run or ensemble),
the data folder's test images (files and sites, through the task), `meta.csv` (clocks and
sequences) and the detect stage's file (boxes, keyed by the same file paths)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kaggle_style.constants import CONFIG_FILE, FILEPATH_COL, ID_COL, SITE_COL, TEST_FILE
from kaggle_style.errors import UserError
from kaggle_style.files import read_yaml
from kaggle_style.outputs.classified import FILE_COL, Classified
from kaggle_style.task import Task


def run_commit(run_dir: Path) -> str:
    """The git commit a run's config.yaml was written at ("" when it names none)."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        return ""
    return str((read_yaml(path) or {}).get("git_commit") or "")


def classified_from_run(
    run_dir: Path,
    data: Path,
    meta: Path | None = None,
    detections: Path | None = None,
    task: Task | None = None,
) -> Classified:
    """The run's test set, classified; times and sequences from `meta` when given."""
    from kaggle_style.data.meta_file import read_meta
    from kaggle_style.data.tables import load_competition_data
    from kaggle_style.detect import mdjson
    from kaggle_style.prediction_files import classes_of, read_predictions

    run_dir, data = Path(run_dir), Path(data)
    test_file = run_dir / TEST_FILE
    if not test_file.is_file():
        raise UserError(
            f"{test_file}: not found; give --run a trained model run or an "
            "ensemble run (its test.csv holds the test predictions)"
        )
    predictions = read_predictions(test_file)
    classes = classes_of(predictions, str(test_file))
    if task is not None:
        task.check_classes(classes, str(test_file))
    features = load_competition_data(data, task).test
    frame = predictions.merge(features, on=ID_COL, how="left")
    unknown = frame.loc[frame[FILEPATH_COL].isna(), ID_COL].tolist()
    if unknown:
        raise UserError(
            f"{test_file}: {len(unknown)} id(s) not among the test images of {data}, e.g. "
            f"{unknown[0]}; give --data the folder the run was trained on"
        )
    if meta is not None:
        clocks = read_meta(meta, frame[ID_COL])[[ID_COL, "datetime", "sequence"]]
        frame = frame.merge(clocks, on=ID_COL, how="left")
    else:  # no clocks: every image its own visit, no times
        frame["datetime"], frame["sequence"] = "", frame[SITE_COL] + "/" + frame[ID_COL]
    images = pd.DataFrame(
        {
            FILE_COL: frame[FILEPATH_COL],
            SITE_COL: frame[SITE_COL].astype(str),
            "datetime": frame["datetime"],
            "sequence": frame["sequence"],
        }
    )
    images[list(classes)] = frame[list(classes)].to_numpy()
    found = mdjson.read(detections) if detections is not None else None
    return Classified(
        images=images,
        classifier=run_dir.name,
        commit=run_commit(run_dir),
        detections=found,
        classes=classes,
    )
