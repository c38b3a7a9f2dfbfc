"""Visits: a burst of 1-5 frames of one animal, at an hour its species is about.

A camera trap fires several frames per trigger, a second or so apart, and again if the animal
lingers; every frame of a visit shows the same animal. When animals are about is what camera-trap
studies of these species in West African forest report: civets, genets and rodents at night,
leopards mostly at night, hogs and duikers at dusk, dawn and night, monkeys and birds by day
(prosimians, a few of the monkey class, at night); blanks (wind, sun, heat) at any hour.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from kaggle_style.demo.frames import NOCTURNAL, Shot
from kaggle_style.demo.scenes import Site
from kaggle_style.meta.infobar import DAY_HOURS

# Per class: a floor (any hour) and (peak hour, spread in hours, weight) bumps on the 24-h circle.
ACTIVITY: dict[str, tuple[float, tuple[tuple[float, float, float], ...]]] = {
    "antelope_duiker": (0.08, ((6.5, 1.2, 1.0), (18.5, 1.2, 1.0), (0.5, 3.0, 0.6))),
    "bird": (0.02, ((8.0, 2.0, 1.0), (16.0, 2.0, 0.6))),
    "blank": (1.0, ()),
    "civet_genet": (0.01, ((22.0, 2.5, 1.0), (2.5, 2.5, 0.8))),
    "hog": (0.05, ((6.0, 1.2, 0.8), (19.0, 1.2, 1.0), (0.5, 3.0, 0.6))),
    "leopard": (0.05, ((21.0, 3.0, 1.0), (3.0, 3.0, 0.8), (12.0, 3.0, 0.2))),
    "monkey_prosimian": (0.01, ((9.0, 2.5, 1.0), (15.0, 2.5, 0.9), (22.0, 2.5, 0.1))),
    "rodent": (0.02, ((21.0, 2.5, 1.0), (3.0, 2.5, 0.9))),
}
BURST_SHARE = (0.35, 0.2, 0.2, 0.15, 0.1)  # visits of 1, 2, ... 5 frames
BURST_SECONDS = (1.0, 4.0)  # between the frames of one trigger
RETRIGGER = 0.2  # chance that the next frame is a new trigger: the animal lingered
RETRIGGER_SECONDS = (20.0, 180.0)
FOLLOW = 0.1  # chance that a visit comes soon after the site's previous one (another animal)
FOLLOW_SECONDS = (30.0, 900.0)
DAYS = 90  # a deployment's length
TWILIGHT = 1.0  # hours after DAY_HOURS[0] and before DAY_HOURS[1] when the flash may fire
DAY_IR = 0.15  # chance of an IR visit in daylight, times the site's night factor (dense canopy)
STEP = 0.03  # sd of an animal's walk per frame, in shares of the width
MINUTES = np.arange(24 * 60) / 60.0


def activity(label: str) -> np.ndarray:
    """The class's activity density over the day's 1440 minutes (sums to 1)."""
    floor, bumps = ACTIVITY[label]
    density = np.full(len(MINUTES), floor)
    for peak, spread, weight in bumps:
        gap = np.abs(MINUTES - peak)
        gap = np.minimum(gap, 24 - gap)  # the day is a circle
        density = density + weight * np.exp(-0.5 * (gap / spread) ** 2)
    return density / density.sum()


def draw_hour(rng: np.random.Generator, label: str) -> float:
    minute = int(rng.choice(len(MINUTES), p=activity(label)))
    return float(MINUTES[minute] + rng.uniform(0, 1 / 60))


def plan_visits(
    rng: np.random.Generator, rows: list[tuple[str, str]], max_burst: int
) -> list[list[int]]:
    """Group a split's (site, label) rows into visits of 1-max_burst (at most 5) frames of one
    site and label, in order of each visit's first row; every row in exactly one visit."""
    share = np.asarray(BURST_SHARE[:max_burst])
    share = share / share.sum()
    visits: list[list[int]] = []
    open_visit: dict[tuple[str, str], tuple[int, int]] = {}  # key -> (visit, frames still due)
    for i, key in enumerate(rows):
        visit, due = open_visit.get(key, (-1, 0))
        if due == 0:
            visit, due = len(visits), 1 + int(rng.choice(max_burst, p=share))
            visits.append([])
        visits[visit].append(i)
        open_visit[key] = (visit, due - 1)
    return visits


def infrared(rng: np.random.Generator, hour: float, site: Site) -> bool:
    """Whether the trap fires its IR flash: always in the dark, often at twilight, sometimes by
    day under dense canopy (the real ZJ000014 is grey at 15:59)."""
    dawn, dusk = DAY_HOURS
    if not dawn <= hour < dusk:
        return True
    if hour < dawn + TWILIGHT or hour >= dusk - TWILIGHT:
        return bool(rng.random() < 0.5)
    return bool(rng.random() < DAY_IR * site.night_factor)


def make_shots(
    seed: int,
    split_key: int,
    visits: list[list[int]],
    rows: list[tuple[str, str]],
    sites: dict[str, Site],
    timestamps: bool,
) -> dict[int, Shot]:
    """Each row's shot: its visit's animal, light and clock, and its own step and time.

    With `timestamps`, a visit's hour follows its class's activity and the light follows the
    hour; without, the light is drawn as for single frames and the hour fits the light.
    """
    shots: dict[int, Shot] = {}
    last_end: dict[str, dt.datetime] = {}
    for v, members in enumerate(visits):
        site_name, label = rows[members[0]]
        site = sites[site_name]
        rng = np.random.default_rng([seed, 6, split_key, v])
        if timestamps:
            if site_name in last_end and rng.random() < FOLLOW:
                start = last_end[site_name] + dt.timedelta(
                    seconds=round(rng.uniform(*FOLLOW_SECONDS))
                )
            else:
                day = dt.datetime.combine(site.start, dt.time()) + dt.timedelta(
                    days=int(rng.integers(DAYS))
                )
                start = day + dt.timedelta(seconds=round(draw_hour(rng, label) * 3600))
            clock = start.hour + start.minute / 60 + start.second / 3600
            night = infrared(rng, clock, site)
        else:
            night = bool(rng.random() < min(0.95, NOCTURNAL[label] * site.night_factor))
            hour = (
                int(rng.choice([*range(19, 24), *range(0, 5)]))
                if night
                else int(rng.integers(6, 18))
            )
            start = dt.datetime.combine(
                site.start + dt.timedelta(days=int(rng.integers(0, 60))),
                dt.time(hour, int(rng.integers(60)), int(rng.integers(60))),
            )
        speed = float(rng.normal(0, STEP))
        when = start
        for k, row in enumerate(members):
            if k:
                span = RETRIGGER_SECONDS if rng.random() < RETRIGGER else BURST_SECONDS
                when = when + dt.timedelta(seconds=round(rng.uniform(*span)))
            shots[row] = Shot(
                visit_seed=(seed, 10, split_key, v), step=speed * k, night=night, when=when
            )
        last_end[site_name] = when
    return shots
