"""ensemble.json: one typed schema every writer and reader goes through.

The file keeps the layout older versions wrote (one top-level record per step, under the step's
key), plus a `version`. A file without one (written before the schema) is read when it holds
what `predict` and the report need, and refused with one line otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from kaggle_style.ensemble.base import EnsembleError
from kaggle_style.files import write_json

VERSION = 2
RERUN = "rerun `kaggle-style ensemble`"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Summary(_Model):
    log_loss: float
    accuracy: float
    f1_micro: float
    f1_macro: float
    f1_weighted: float


class TableRow(_Model):
    name: str
    in_sample: Summary
    nested: Summary | None


class Final(_Model):
    in_sample: Summary
    nested: Summary | None  # the honest figure: every fit and every choice without the fold
    nested_given_choices: Summary | None = None  # the choices made on all folds, then nested


class SpaceChoice(_Model):
    mode: str
    log_loss: dict[str, float]
    estimate: Literal["in_sample", "nested"]


class NestedFit(_Model):
    fold: int
    weights: dict[str, float]
    temperature: float


class StackingRecord(_Model):
    mode: bool | Literal["auto"]
    used: bool
    in_sample: Summary | None = None
    nested: Summary | None = None
    model: dict[str, Any] | None = None  # `Stacker.to_dict()` when used


class Member(_Model):
    """A run the ensemble blends, as it was when the ensemble was built."""

    path: str
    model_hash: str | None = None  # None: not a model run (e.g. an ensemble of ensembles)


class StepRecord(BaseModel):
    """What every step records; each step adds its own fields (see `Step.record`)."""

    model_config = ConfigDict(extra="allow")

    mode: str | None = None  # older hand-written files may lack it
    applied: bool
    skipped: str | None = None
    in_sample: dict[str, float] | None = None  # log loss before -> after
    nested: dict[str, Any] | None = None  # before, after, and each fold's fit

    def details(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class EnsembleReport(_Model):
    """Everything `ensemble` decided and measured; `Blend.from_report` rebuilds the fit."""

    version: int = 1  # 1: written before the schema
    runs: dict[str, str]
    members: dict[str, Member] | None = None
    method: Literal["weighted", "stacking"]
    space: Literal["prob", "logprob"]
    weights: dict[str, float]
    temperature: float | None = None
    n_oof: int | None = None
    n_test: int | None = None
    folds: list[int] | None = None
    space_choice: SpaceChoice | None = None
    nested_fits: list[NestedFit] | None = None
    choices_per_fold: list[dict[str, Any]] | None = None
    stacking: StackingRecord | None = None
    steps: dict[str, StepRecord] = {}
    table: list[TableRow] | None = None
    final: Final | None = None
    git_commit: str | None = None
    task: str | None = None  # the task's name and class order (None: before tasks, conservision)
    classes: list[str] | None = None
    metric: dict[str, Any] | None = None  # the task's metric: its name, in-sample and nested

    def step(self, key: str) -> StepRecord | None:
        return self.steps.get(key)

    def to_dict(self) -> dict[str, Any]:
        """The file's layout: each step's record at the top level under its key (in the order
        the ensemble fitted them, `steps.STEPS`)."""
        data = self.model_dump(exclude_unset=True, exclude={"steps"})
        data["version"] = self.version
        for key, record in self.steps.items():
            data[key] = record.details()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "ensemble.json") -> EnsembleReport:
        if not isinstance(data, dict):
            raise EnsembleError(f"{where}: not an ensemble report; {RERUN}")
        version = data.get("version", 1)
        if not isinstance(version, int) or version > VERSION:
            raise EnsembleError(
                f"{where}: version {version!r} is newer than this code reads "
                f"({VERSION}); update kaggle_style or {RERUN}"
            )
        # A record at the top level that is no field of the report is a step's, under its key.
        steps = {k: v for k, v in data.items() if k not in cls.model_fields and isinstance(v, dict)}
        body = {k: v for k, v in data.items() if k not in steps}
        body["steps"] = steps
        try:
            return cls.model_validate(body)
        except ValidationError as err:
            first = err.errors()[0]
            field = ".".join(map(str, first["loc"])) or "(top)"
            old = "an older version's file" if version < VERSION else "a damaged file"
            raise EnsembleError(f"{where}: {old} ({field}: {first['msg']}); {RERUN}") from None


def read_report(path: Path) -> EnsembleReport:
    """ensemble.json read and checked; any problem is one line naming the file."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise EnsembleError(f"{path}: unreadable ({err.__class__.__name__}); {RERUN}") from None
    return EnsembleReport.from_dict(data, str(path))


def write_report(path: Path, report: EnsembleReport) -> None:
    write_json(path, report.to_dict())
