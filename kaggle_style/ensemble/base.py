"""What every module of the second stage shares: its error, the rows a step sees, its inputs.

The leaf of `kaggle_style.ensemble`: it imports no other module of the package, so any of them
may import it without a circle. `Inputs` is what `inputs.load_inputs` reads and `run` fits on;
`RowFacts` is what a per-row step may know about a set of rows (labels and folds only for the
rows it is fitted on); `log_probs` is the one floored log every fit takes of probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from kaggle_style.errors import UserError
from kaggle_style.task import Task

LOG_FLOOR = 1e-15  # probabilities are floored before a log so one zero cannot give -inf


class EnsembleError(UserError):
    """Runs that cannot be blended as given."""


def log_probs(probs: np.ndarray) -> np.ndarray:
    return np.log(np.clip(np.asarray(probs, dtype=np.float64), LOG_FLOOR, 1.0))


@dataclass(frozen=True)
class RowFacts:
    """What a step may know about a set of rows; labels and folds exist only for fitting rows."""

    y: np.ndarray | None = None  # class index
    folds: np.ndarray | None = None
    sites: np.ndarray | None = None  # str
    times: np.ndarray | None = None  # seconds (float), NaN where the info bar was not read
    hours: np.ndarray | None = None  # 0-24, NaN where unread
    night: np.ndarray | None = None  # 1 night (infrared), 0 day, NaN unread
    members: np.ndarray | None = None  # (rows, members, classes): each member's probabilities
    boxes: np.ndarray | None = None  # object array: per row, its boxes' [confidence, share]

    def take(self, mask: np.ndarray) -> RowFacts:
        return RowFacts(
            **{
                f.name: None if getattr(self, f.name) is None else getattr(self, f.name)[mask]
                for f in fields(self)
            }
        )

    def unlabelled(self) -> RowFacts:
        return replace(self, y=None, folds=None)


@dataclass
class Meta:
    """Info-bar readings of some ids; NaN where the bar could not be read."""

    times: np.ndarray  # seconds since 1970 (camera clock), float
    hours: np.ndarray  # 0-24
    night: np.ndarray  # 1/0

    def take(self, mask: np.ndarray) -> Meta:
        return Meta(self.times[mask], self.hours[mask], self.night[mask])


def facts_of(
    sites: np.ndarray | None,
    meta: Meta | None,
    y: np.ndarray | None = None,
    folds: np.ndarray | None = None,
) -> RowFacts:
    """The rows' facts from their sites and info-bar readings (and, to fit on, labels, folds)."""
    if meta is None:
        return RowFacts(y=y, folds=folds, sites=sites)
    return RowFacts(
        y=y, folds=folds, sites=sites, times=meta.times, hours=meta.hours, night=meta.night
    )


@dataclass
class Inputs:
    """Aligned OOF and test probabilities of every run, with labels, folds and (maybe) sites."""

    names: list[str]
    oof_ids: np.ndarray
    test_ids: np.ndarray
    oof: list[np.ndarray]
    test: list[np.ndarray]
    y: np.ndarray
    folds: np.ndarray
    oof_sites: np.ndarray | None = None
    test_sites: np.ndarray | None = None
    site_note: str = ""  # why there are no sites
    oof_meta: Meta | None = None
    test_meta: Meta | None = None
    meta_note: str = ""  # why there is no meta
    hashes: list[str | None] | None = None  # each run's model hash (None: not a model run)
    oof_boxes: np.ndarray | None = None  # per row, its detector boxes (see detections.py)
    test_boxes: np.ndarray | None = None
    detections_note: str = "no detections file (give --detections)"
    task: Task | None = None  # the competition: classes (prediction columns), metric, layout

    @property
    def classes(self) -> tuple[str, ...]:
        if self.task is not None:
            return self.task.classes
        return tuple(str(c) for c in range(self.oof[0].shape[1]))  # inputs built without a task

    def rows(self) -> RowFacts:
        return replace(
            facts_of(self.oof_sites, self.oof_meta, self.y, self.folds),
            members=np.stack(self.oof, axis=1),
            boxes=self.oof_boxes,
        )

    def test_rows(self) -> RowFacts:
        return replace(
            facts_of(self.test_sites, self.test_meta),
            members=np.stack(self.test, axis=1),
            boxes=self.test_boxes,
        )

    def hold_out(self, fold: int) -> Inputs:
        """The other folds as OOF rows and this fold's rows as unlabelled test rows: what the
        whole second stage, its choices included, may see when it predicts this fold."""
        held = self.folds == fold
        keep = ~held

        def part(values: np.ndarray | None, mask: np.ndarray) -> np.ndarray | None:
            return None if values is None else values[mask]

        return replace(
            self,
            oof_ids=self.oof_ids[keep],
            test_ids=self.oof_ids[held],
            oof=[p[keep] for p in self.oof],
            test=[p[held] for p in self.oof],
            y=self.y[keep],
            folds=self.folds[keep],
            oof_sites=part(self.oof_sites, keep),
            test_sites=part(self.oof_sites, held),
            oof_meta=None if self.oof_meta is None else self.oof_meta.take(keep),
            test_meta=None if self.oof_meta is None else self.oof_meta.take(held),
            oof_boxes=part(self.oof_boxes, keep),
            test_boxes=part(self.oof_boxes, held),
        )
