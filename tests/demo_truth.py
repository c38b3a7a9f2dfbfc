"""What the tests read from a generated demo folder's truth.csv instead of running a stage."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def truth_meta(data: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The demo's test rows (its truth.csv) and the meta.csv `meta` would read from them: the
    generator's clocks, night flags and sequences, without Tesseract."""
    from kaggle_style.meta.sequences import assign_sequences

    truth = pd.read_csv(data / "truth.csv")
    test = truth[truth["split"] == "test"].reset_index(drop=True)
    stamps = pd.to_datetime(test["datetime"])
    meta = pd.DataFrame(
        {
            "id": test["id"],
            "datetime": test["datetime"],
            "hour": stamps.dt.hour + stamps.dt.minute / 60,
            "camera": "",
            "night": test["night"].astype(int),
            "confidence": 1.0,
            "sequence": assign_sequences(test["site"], test["datetime"]),
        }
    )
    return test, meta
