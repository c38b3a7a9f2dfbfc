"""Record tables: independent events per site and class, as camtrapR's `recordTable` counts them.

A record is an image with a class the user kept (`Thresholds`; blank is never a record). Two
records of one class at one site belong to one event when the second comes less than
`minutes` after the event's first record (camtrapR's `deltaTimeComparedTo =
"lastIndependentRecord"`) or after the previous record (`"lastRecord"`). A record whose clock
was not read is counted apart, one per image: joining it to any event would be a guess.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from kaggle_style.constants import SITE_COL
from kaggle_style.outputs.classified import FILE_COL, Classified, Thresholds, kept_classes
from kaggle_style.outputs.taxonomy import BLANK, taxon_of

DEFAULT_MINUTES = 30.0  # camtrapR's usual interval between independent records
ComparedTo = Literal["last_independent", "last"]
EVENT_COLUMNS = (
    SITE_COL,
    "class",
    "scientific_name",
    "event",
    "start",
    "end",
    "images",
    "max_prob",
    "first_file",
    "timed",
)
COUNT_COLUMNS = (SITE_COL, "class", "scientific_name", "independent_events", "untimed_images")


def records(classified: Classified, thresholds: Thresholds) -> pd.DataFrame:
    """`site, class, file, datetime, prob`: one row per image and kept animal class."""
    images = classified.images
    rows = []
    for k, kept in enumerate(kept_classes(classified.probs, thresholds)):
        for c, p in kept:
            if classified.classes[c] != BLANK:
                rows.append(
                    (
                        images.at[k, SITE_COL],
                        classified.classes[c],
                        images.at[k, FILE_COL],
                        images.at[k, "datetime"],
                        p,
                    )
                )
    return pd.DataFrame(rows, columns=[SITE_COL, "class", FILE_COL, "datetime", "prob"])


def _event_numbers(seconds: np.ndarray, gap: float, compared_to: ComparedTo) -> np.ndarray:
    """Event number of each record (sorted by time) of one site and class."""
    numbers = np.zeros(len(seconds), dtype=int)
    anchor = seconds[0] if len(seconds) else 0.0
    for k in range(1, len(seconds)):
        reference = anchor if compared_to == "last_independent" else seconds[k - 1]
        new = seconds[k] - reference >= gap
        numbers[k] = numbers[k - 1] + new
        if new:
            anchor = seconds[k]
    return numbers


def independent_events(
    table: pd.DataFrame,
    minutes: float = DEFAULT_MINUTES,
    compared_to: ComparedTo = "last_independent",
) -> pd.DataFrame:
    """EVENT_COLUMNS: one row per independent event of timed records, then one per untimed
    record (`timed` False, no start or end, event numbers after the timed ones)."""
    if not np.isfinite(minutes) or minutes < 0:
        raise ValueError(f"the independence interval must be >= 0 minutes, got {minutes}")
    stamps = pd.to_datetime(table["datetime"].replace("", None), errors="coerce", format="ISO8601")
    frame = table.assign(_t=stamps).sort_values(
        [SITE_COL, "class", "_t", FILE_COL], na_position="last", kind="stable"
    )
    out = []
    for (site, name), group in frame.groupby([SITE_COL, "class"], sort=True):
        timed = group[group["_t"].notna()]
        seconds = (timed["_t"] - pd.Timestamp(0)).dt.total_seconds().to_numpy()
        numbers = _event_numbers(seconds, minutes * 60.0, compared_to)
        for number, event in timed.groupby(numbers, sort=True):
            out.append(
                (
                    site,
                    name,
                    int(number),  # type: ignore[call-overload]  # stubs: a group label is a tuple
                    event["datetime"].iloc[0],
                    event["datetime"].iloc[-1],
                    len(event),
                    event["prob"].max(),
                    event[FILE_COL].iloc[0],
                    True,
                )
            )
        first = int(numbers[-1]) + 1 if len(numbers) else 0
        for k, (_, row) in enumerate(group[group["_t"].isna()].iterrows()):
            out.append((site, name, first + k, "", "", 1, row["prob"], row[FILE_COL], False))
    events = pd.DataFrame(out, columns=[c for c in EVENT_COLUMNS if c != "scientific_name"])
    events.insert(2, "scientific_name", events["class"].map(_name))
    return events


def _name(cls: str) -> str:
    taxon = taxon_of(cls)
    return taxon.scientific_name if taxon else ""


def count_table(events: pd.DataFrame) -> pd.DataFrame:
    """COUNT_COLUMNS: independent events (timed) and untimed images per site and class."""
    if events.empty:
        return pd.DataFrame(columns=list(COUNT_COLUMNS))
    grouped = events.groupby([SITE_COL, "class", "scientific_name"], sort=True)["timed"]
    counts = grouped.agg(
        independent_events="sum", untimed_images=lambda t: int((~t).sum())
    ).reset_index()
    counts["independent_events"] = counts["independent_events"].astype(int)
    return counts[list(COUNT_COLUMNS)]


def site_by_class(counts: pd.DataFrame, classes: tuple[str, ...] = ()) -> pd.DataFrame:
    """Sites × classes of independent events (the table ecologists read first), the columns in
    `classes`' order (else sorted)."""
    wide = counts.pivot_table(
        index=SITE_COL, columns="class", values="independent_events", aggfunc="sum", fill_value=0
    )
    order = [c for c in classes if c in wide.columns] if classes else sorted(wide.columns)
    return wide.reindex(columns=order).astype(int)
