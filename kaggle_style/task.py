"""The competition as a file: tables, columns, classes, groups, submission and metric (a task).

Everything competition-specific lives in one `configs/tasks/<name>.yaml`, read into `Task` (a
pydantic model, unknown keys refused), so that the library never assumes Conser-vision: classes
reach a consumer from the task or from a prediction file's columns. Internally the project keeps
its columns `id`, `filepath`, `site` (the group), `label`, `fold`; `data.tables` maps the task's
columns onto them when reading and `submission` maps them back when writing.

A stage finds its task from `--task FILE_OR_NAME` (a name is `configs/tasks/NAME.yaml`), else from
the copy `folds` wrote beside the folds file (`recorded_task`), else the default `conservision`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from kaggle_style import files
from kaggle_style.errors import UserError

TASKS_DIR = "configs/tasks"
DEFAULT_TASK = "conservision"
DEFAULT_FOLDS = "folds/folds.csv"  # where `folds` writes, so where later stages look first
TASK_RECORD_SUFFIX = ".task.yaml"  # folds/folds.csv -> folds/folds.task.yaml (a whole task file)

MetricName = Literal["log_loss", "accuracy", "macro_f1", "roc_auc"]
SubmissionKind = Literal["probabilities", "label"]
LabelKind = Literal["onehot", "column"]

# Conser-vision's facts, also in configs/tasks/conservision.yaml (tests/test_task.py keeps the two
# equal): the built-in default, so an installed package without the configs folder still works.
CONSERVISION_CLASSES: tuple[str, ...] = (
    "antelope_duiker",
    "bird",
    "blank",
    "civet_genet",
    "hog",
    "leopard",
    "monkey_prosimian",
    "rodent",
)


def _names(value: Any) -> Any:
    """Class names as strings: a label column of 0/1 gives YAML numbers, the files give text."""
    if isinstance(value, list | tuple):
        return tuple(
            str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v for v in value
        )
    return value


ClassNames = Annotated[tuple[str, ...], BeforeValidator(_names)]

CONSERVISION_CLASS_INDEX: dict[str, int] = {c: i for i, c in enumerate(CONSERVISION_CLASSES)}
# DrivenData's table names (Conser-vision's layout; the demo generator writes it too).
TRAIN_FEATURES = "train_features.csv"
TRAIN_LABELS = "train_labels.csv"
TEST_FEATURES = "test_features.csv"
SUBMISSION_FORMAT = "submission_format.csv"


class TaskError(UserError, ValueError):
    """A task file, or a combination of its keys, that cannot describe a competition."""


# a field's docstring is its description (the generated reference page of the task file)
_STRICT = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class Tables(BaseModel):
    """The table file names inside DATA."""

    model_config = _STRICT
    train: str
    """the table of the training ids (with image paths, groups, maybe labels)"""
    labels: str | None = None
    """a separate label table joined on the id (null: the labels are in `train`)"""
    test: str | None = None
    """the table of the test ids (null: the test ids are the submission format's ids)"""
    submission_format: str
    """the format file: its columns, column order and id order are the submission's"""


class Images(BaseModel):
    """Where each image is: a path column, or one pattern per split (`{id}`, `**` = sub-folders)."""

    model_config = _STRICT
    column: str | None = None
    """a column of image paths, relative to the data folder"""
    train_pattern: str | None = None
    """or a pattern per split: `{id}` the id, `**` any sub-folders (`train_images/**/{id}.jpg`)"""
    test_pattern: str | None = None
    """the test images' pattern (with `train_pattern`)"""

    @model_validator(mode="after")
    def _one_way(self) -> Images:
        patterns = [p for p in (self.train_pattern, self.test_pattern) if p is not None]
        if self.column is not None and patterns:
            raise ValueError("images: give either column or train_pattern/test_pattern, not both")
        if self.column is None and len(patterns) < 2:
            raise ValueError(
                "images: give column (a path column) or both train_pattern and test_pattern"
            )
        for pattern in patterns:
            if "{id}" not in pattern:
                raise ValueError(f"images: pattern {pattern!r} has no {{id}}")
        return self


class Labels(BaseModel):
    model_config = _STRICT
    kind: LabelKind = "onehot"
    """onehot: one 0/1 column per class; column: one column of class names"""
    column: str | None = None
    """the label column, for kind column (`label`, `species`, ...)"""

    @model_validator(mode="after")
    def _column_kind(self) -> Labels:
        if self.kind == "column" and not self.column:
            raise ValueError("labels: kind column needs labels.column (the label column's name)")
        if self.kind == "onehot" and self.column is not None:
            raise ValueError("labels: column is only for kind column; remove it or set kind")
        return self


class Submission(BaseModel):
    model_config = _STRICT
    kind: SubmissionKind = "probabilities"
    """probabilities: one column per class; label: one predicted-label column (the argmax)"""
    label_column: str | None = None
    """the format's column that receives the class name, for kind label"""

    @model_validator(mode="after")
    def _label_column(self) -> Submission:
        if self.kind == "label" and not self.label_column:
            raise ValueError("submission: kind label needs submission.label_column")
        if self.kind == "probabilities" and self.label_column is not None:
            raise ValueError("submission: label_column is only for kind label")
        return self


class CameraTrap(BaseModel):
    """What the camera-trap steps need; a task without it skips them."""

    model_config = _STRICT
    info_bar: bool = True
    """the cameras burn a clock into an info bar that `meta` reads"""
    day_hours: tuple[float, float] = (6.0, 18.5)
    """between these hours the scene is lit (time-of-day features)"""
    blank_class: str | None = None
    """the class of frames without an animal"""
    taxonomy: str | None = None
    """the taxonomy the field outputs (Camtrap DP, MegaDetector JSON) use"""


class Task(BaseModel):
    """One competition. `classes` is the column order of every prediction file."""

    model_config = _STRICT
    name: str
    """the task's name, its file's stem; recorded with folds, runs and ensembles"""
    tables: Tables
    """the table file names inside the data folder"""
    id_column: str = "id"
    """the id column, the same name in every table"""
    images: Images
    """where each image is"""
    labels: Labels = Field(default_factory=Labels)
    """how the labels are written"""
    classes: ClassNames
    """the classes, in the column order of every prediction file"""
    group_column: str | None = None
    """folds keep each group in one fold (`site`, `camera`, `patient`; null: stratified folds)"""
    submission: Submission = Field(default_factory=Submission)
    """what the submission holds"""
    metric: MetricName | None = None
    """the competition's metric (null: log_loss for probabilities, accuracy for labels)"""
    camera_trap: CameraTrap | None = None
    """what the camera-trap steps need (null: they are skipped, saying so)"""

    @model_validator(mode="after")
    def _consistent(self) -> Task:
        if not _NAME.match(self.name):
            raise ValueError(f"name: {self.name!r} is not a file-name-safe task name")
        if len(self.classes) < 2:
            raise ValueError(f"classes: a task needs at least 2 classes, not {len(self.classes)}")
        dup = sorted({c for c in self.classes if self.classes.count(c) > 1})
        if dup:
            raise ValueError(f"classes: {', '.join(dup)} listed twice")
        if self.images.column is not None and self.tables.test is None:
            raise ValueError(
                "tables: test null (the test ids are the submission format's) needs image "
                "patterns (images.train_pattern, images.test_pattern): a format has no path column"
            )
        if self.metric == "roc_auc" and len(self.classes) != 2:
            raise ValueError(
                f"metric: roc_auc needs exactly 2 classes, not {len(self.classes)}; "
                "use log_loss, accuracy or macro_f1"
            )
        if self.metric == "log_loss" and self.submission.kind == "label":
            raise ValueError(
                "metric: log_loss needs probabilities; a label submission takes "
                "accuracy or macro_f1"
            )
        ct = self.camera_trap
        if ct is not None and ct.blank_class is not None and ct.blank_class not in self.classes:
            raise ValueError(f"camera_trap: blank_class {ct.blank_class!r} is not in classes")
        if ct is not None and not 0 <= ct.day_hours[0] < ct.day_hours[1] <= 24:
            raise ValueError("camera_trap: day_hours must be [start, end] within 0..24")
        return self

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def class_index(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.classes)}

    @property
    def score_metric(self) -> MetricName:
        """The metric the task is scored by (the stated one, else the submission kind's default)."""
        if self.metric is not None:
            return self.metric
        return "log_loss" if self.submission.kind == "probabilities" else "accuracy"

    @property
    def camera_trap_parts(self) -> bool:
        return self.camera_trap is not None

    @property
    def path_column(self) -> str | None:
        return self.images.column

    def check_classes(
        self, classes: tuple[str, ...] | list[str], where: str, ordered: bool = True
    ) -> None:
        """Refuse a file or run whose class list (or, when `ordered`, order) is not the task's,
        in one line. A prediction file's columns are matched by name (`ordered` False)."""
        classes = tuple(classes)
        if classes == self.classes or (not ordered and sorted(classes) == sorted(self.classes)):
            return
        if sorted(classes) == sorted(self.classes):
            raise TaskError(
                f"{where}: classes in another order ({', '.join(classes)}) than task "
                f"{self.name} ({', '.join(self.classes)}); rebuild it under this task"
            )
        raise TaskError(
            f"{where}: classes {', '.join(classes)} are not task {self.name}'s "
            f"({', '.join(self.classes)}); give its own --task or rebuild it under this one"
        )

    def check_record(self, record: dict[str, Any] | None, where: str) -> None:
        """Refuse a run whose recorded task (name, classes) is another; older runs without a
        record are taken as the default task's."""
        record = record or {}
        name = record.get("task", DEFAULT_TASK)
        if name != self.name:
            raise TaskError(
                f"{where}: made for task {name}, not {self.name}; give --task {name} or use "
                f"runs of task {self.name}"
            )
        if record.get("classes") is not None:
            self.check_classes(tuple(record["classes"]), where)

    def record(self) -> dict[str, Any]:
        """What a run, an ensemble and the folds file carry: the task's name and class order."""
        return {"task": self.name, "classes": list(self.classes)}

    def as_yaml_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def conservision() -> Task:
    """DrivenData's Conser-vision (the built-in default; configs/tasks/conservision.yaml says the
    same)."""
    return Task(
        name="conservision",
        tables=Tables(
            train=TRAIN_FEATURES,
            labels=TRAIN_LABELS,
            test=TEST_FEATURES,
            submission_format=SUBMISSION_FORMAT,
        ),
        id_column="id",
        images=Images(column="filepath"),
        labels=Labels(kind="onehot"),
        classes=CONSERVISION_CLASSES,
        group_column="site",
        submission=Submission(kind="probabilities"),
        metric="log_loss",
        camera_trap=CameraTrap(
            info_bar=True, day_hours=(6.0, 18.5), blank_class="blank", taxonomy="conservision"
        ),
    )


def parse_task(data: Any, where: str) -> Task:
    """A task from a mapping; any problem is one TaskError naming `where` and the key."""
    if not isinstance(data, dict):
        raise TaskError(f"{where}: a task file must be a mapping of keys to values")
    try:
        return Task(**data)
    except ValidationError as err:
        raise TaskError(f"{where}: {_reason(err)}") from None
    except TypeError as err:  # a non-string key
        raise TaskError(f"{where}: {err}") from None


def _reason(err: ValidationError) -> str:
    errors = err.errors()
    unknown = [e for e in errors if e["type"] == "extra_forbidden"]
    first = (unknown or errors)[0]  # an unknown key first: a typo also makes a key "missing"
    key = ".".join(str(p) for p in first["loc"])
    if first["type"] == "extra_forbidden":
        return f"unknown key {key}; known keys are those of {TASKS_DIR}/{DEFAULT_TASK}.yaml"
    if first["type"] == "missing":
        return f"missing key {key}"
    message = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "value_error":
        return message
    return f"{key}: {message} (got {first.get('input')!r})"


def task_file(name: str, root: str | Path = ".") -> Path:
    """`configs/tasks/NAME.yaml` under `root`, or NAME itself when it is a YAML file."""
    if name.endswith((".yaml", ".yml")) or "/" in name:
        return Path(name)
    return Path(root) / TASKS_DIR / f"{name}.yaml"


def read_task(path: str | Path) -> Task:
    path = Path(path)
    data = files.read_yaml(
        path, TaskError, "task file", f"give a task file or a name in {TASKS_DIR}"
    )
    task = parse_task(data, str(path))
    stem = path.name.removesuffix(".yaml").removesuffix(".yml")
    if not path.name.endswith(TASK_RECORD_SUFFIX) and task.name != stem:
        raise TaskError(f"{path}: name {task.name!r} differs from the file name; set name: {stem}")
    return task


def load_task(
    spec: str | Path | Task | None = None, folds: str | Path | None = None, root: str | Path = "."
) -> Task:
    """The stage's task: `spec` (a file or a name), else the one recorded beside `folds`, else the
    default. The default's name falls back to the built-in when no file names it."""
    if isinstance(spec, Task):
        return spec
    if spec is None and folds is not None:
        recorded = recorded_task(folds)
        if recorded is not None:
            return recorded
    name = str(spec) if spec is not None else DEFAULT_TASK
    path = task_file(name, root)
    if not path.is_file() and path == Path(root) / TASKS_DIR / f"{name}.yaml":
        # a run's config.yaml names its task; the folds record holds it when no file does
        recorded = recorded_task(folds) if folds is not None else None
        if recorded is not None and recorded.name == name:
            return recorded
        if name == DEFAULT_TASK:
            return conservision()
    return read_task(path)


def task_record_path(folds: str | Path) -> Path:
    """Where `folds` writes the whole task beside the folds file."""
    folds = Path(folds)
    return folds.with_name(folds.name.removesuffix(folds.suffix) + TASK_RECORD_SUFFIX)


def recorded_task(folds: str | Path) -> Task | None:
    """The task `folds` recorded beside `folds`, or None (a folds file of before tasks)."""
    path = task_record_path(folds)
    return read_task(path) if path.is_file() else None


def write_task(path: str | Path, task: Task) -> Path:
    return files.write_yaml(path, task.as_yaml_dict())
