"""Independent events per site and class on generated visits whose true count is known."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from kaggle_style.constants import SITE_COL
from kaggle_style.outputs.classified import FILE_COL, Classified, Thresholds
from kaggle_style.outputs.records import count_table, independent_events, records, site_by_class
from kaggle_style.task import CONSERVISION_CLASSES as CLASSES

T0 = dt.datetime(2020, 5, 1, 6, 0, 0)


def _visits() -> tuple[pd.DataFrame, dict[tuple[str, str], int], dict[tuple[str, str], int]]:
    """Frames of hogs and leopards at two sites, with the independent events (30 min, from the
    last independent record) and untimed images each (site, class) truly has."""
    rows = []

    def burst(site: str, cls: str, start_min: float, frames: int = 3, timed: bool = True):
        for k in range(frames):
            when = T0 + dt.timedelta(minutes=start_min, seconds=10 * k)
            rows.append(
                (site, cls, f"{site}/{cls}_{start_min}_{k}.jpg", when.isoformat() if timed else "")
            )

    burst("A", "hog", 0)  # event 1
    burst("A", "hog", 20)  # 20 min after the first: same event
    burst("A", "hog", 45)  # 45 min after the event's first record: event 2
    burst("A", "hog", 70, 1)  # 25 min after event 2's first: same event
    burst("A", "leopard", 21)  # another class in between: its own event 1
    burst("A", "hog", 300, 2, timed=False)  # clocks unread: 2 images counted apart
    burst("B", "hog", 0)  # another site at the same times: its own events
    burst("B", "hog", 29.9, 1)  # just inside the interval: same event
    burst("B", "hog", 60, 1)  # 60 min after: event 2
    burst("B", "hog", 24 * 60, 2)  # next day: event 3
    events = {("A", "hog"): 2, ("A", "leopard"): 1, ("B", "hog"): 3}
    untimed = {("A", "hog"): 2, ("A", "leopard"): 0, ("B", "hog"): 0}
    frame = pd.DataFrame(rows, columns=[SITE_COL, "class", FILE_COL, "datetime"])
    return frame.sample(frac=1.0, random_state=0).reset_index(drop=True), events, untimed


def _classified(frame: pd.DataFrame) -> Classified:
    probs = np.full((len(frame), len(CLASSES)), 0.02)
    probs[np.arange(len(frame)), frame["class"].map(CLASSES.index)] = 1 - 0.02 * 7
    images = frame[[FILE_COL, SITE_COL, "datetime"]].assign(sequence=frame[FILE_COL])
    images[list(CLASSES)] = probs
    return Classified(images=images, classifier="run", commit="")


def test_event_counts_match_the_generated_visits() -> None:
    frame, truth, untimed = _visits()
    events = independent_events(records(_classified(frame), Thresholds()), minutes=30)
    counts = count_table(events).set_index([SITE_COL, "class"])
    for key, n in truth.items():
        assert counts.loc[key, "independent_events"] == n, key
        assert counts.loc[key, "untimed_images"] == untimed[key], key
    # untimed images are never merged into one another or into a timed event
    assert len(events[~events["timed"]]) == sum(untimed.values())
    assert (events.loc[~events["timed"], "start"] == "").all()
    wide = site_by_class(count_table(events))
    assert wide.loc["A", "hog"] == 2 and wide.loc["B", "leopard"] == 0
    assert counts.loc[("A", "leopard"), "scientific_name"] == "Panthera pardus"


def test_interval_and_reference_choices_change_the_count() -> None:
    frame, _, _ = _visits()
    recs = records(_classified(frame), Thresholds())

    def hog_a(ev):
        return int(ev[(ev[SITE_COL] == "A") & (ev["class"] == "hog") & ev["timed"]].shape[0])

    # from the last record: 0, 20, 45, 70 are each < 30 min after the previous one
    assert hog_a(independent_events(recs, 30, "last")) == 1
    assert hog_a(independent_events(recs, 10)) == 4  # every burst its own event
    assert hog_a(independent_events(recs, 0)) == 10  # every frame
    with pytest.raises(ValueError, match="minutes"):
        independent_events(recs, -1)


def test_blank_and_below_threshold_images_are_not_records() -> None:
    frame, _, _ = _visits()
    classified = _classified(frame)
    probs = classified.probs
    blank = np.zeros(len(CLASSES))
    blank[[CLASSES.index("blank"), CLASSES.index("rodent")]] = 0.9, 0.1
    classified.images.loc[0, list(CLASSES)] = blank
    assert len(records(classified, Thresholds())) == len(frame) - 1
    top = probs.max(axis=1)[1]
    assert records(classified, Thresholds(min_prob=top + 0.01)).empty
    # the second class is a record too: 0.02 on every animal frame, rodent on the blank one
    two = records(classified, Thresholds(top_k=2))
    assert len(two) == 2 * (len(frame) - 1) + 1
    assert two.loc[two[FILE_COL] == frame.at[0, FILE_COL], "class"].tolist() == ["rodent"]
