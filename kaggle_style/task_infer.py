"""Infer a competition's task file from its data folder, as AutoGluon infers a problem type.

A new competition arrives as a folder (DrivenData's four tables, Kaggle's `train.csv` +
`sample_submission.csv` + image folders, or other names). Everything the task file needs is in
the tables' names and columns and in where the images lie; what the data cannot tell (the
metric, which of several group columns) is written as a default and said in one line naming the
key to set. A contradiction in the data itself (labels naming a class the format lacks, a format
that fits no submission kind, ids without an image) is a `UserError`: nothing is written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from kaggle_style.errors import UserError, few_ids
from kaggle_style.files import read_csv

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".gif")
# Table names by role, most specific first; a name is matched without its `.csv`.
TRAIN_NAMES = ("train_features", "train_metadata", "train", "training", "train_meta")
LABEL_NAMES = ("train_labels", "labels", "train_label", "training_labels")
TEST_NAMES = ("test_features", "test_metadata", "test", "test_meta")
FORMAT_NAMES = ("submission_format", "sample_submission", "sample_submit", "submission")
# Column names that say "the label" or "where the image comes from", in order of preference.
LABEL_COLUMNS = ("label", "labels", "species", "class", "category", "target", "diagnosis", "y")
# fmt: off
GROUP_WORDS = (
    "site", "location", "camera", "cam", "station", "trap", "deployment", "patient", "subject",
    "individual", "plot", "region", "area", "hospital", "source", "group",
)
# fmt: on
PATH_WORDS = ("filepath", "file_path", "path", "filename", "file", "image_path", "image")
METRICS_BY_KIND = {"probabilities": "log_loss", "label": "accuracy"}


class TaskInferError(UserError, ValueError):
    """A data folder whose tables contradict each other or fit no task."""


@dataclass
class Inference:
    """The task file's content, what was inferred (one line each) and what was not decided."""

    task: dict[str, Any]
    found: list[str] = field(default_factory=list)
    undecided: list[str] = field(default_factory=list)


def infer_task(data: str | Path, name: str) -> Inference:
    """The task of the competition folder `data`, named `name` (the task file's stem)."""
    root = Path(data)
    if not root.is_dir():
        raise TaskInferError(f"{root}: not a folder; give the competition's data folder")
    csvs = sorted(p.name for p in root.iterdir() if p.suffix.lower() == ".csv" and p.is_file())
    fmt_name = _pick_required(csvs, FORMAT_NAMES, "submission format", root)
    rest = [c for c in csvs if c != fmt_name]
    train_name = _pick_required(rest, TRAIN_NAMES, "training table", root)
    labels_name = _pick([c for c in rest if c != train_name], LABEL_NAMES, "labels", root)
    test_name = _pick([c for c in rest if c not in (train_name, labels_name)], TEST_NAMES, "", root)
    inf = Inference(task={"name": name})
    layout = "DrivenData" if fmt_name == "submission_format.csv" else "Kaggle-style"
    inf.found.append(
        f"tables ({layout} layout): train {train_name}, labels {labels_name or '(in train)'}, "
        f"test {test_name or '(the format ids)'}, submission format {fmt_name}"
    )
    fmt = _read(root / fmt_name)
    train = _read(root / train_name)
    labels = _read(root / labels_name) if labels_name else None
    test = _read(root / test_name) if test_name else None
    id_col = _id_column(fmt, train, labels, test, root, fmt_name, train_name)
    inf.found.append(f"id_column: {id_col} (the format's first column, in every table)")
    submission, classes = _submission(fmt, id_col, root / fmt_name)
    column = submission["label_column"]
    if column is not None and _is_number(fmt[column]) and not fmt[column].str.isdigit().all():
        inf.undecided.append(
            f"submission: the format's '{column}' holds fractions (e.g. {fmt[column].iloc[0]}): "
            "if it wants one class's probability, no submission kind writes that yet; the "
            "task writes predicted labels"
        )
    label_spec, classes = _labels(train, labels, id_col, submission, classes, root, inf)
    label_table = labels if labels is not None else train
    _check_label_values(label_table, label_spec, classes, id_col, root, labels_name or train_name)
    images = _images(root, train, test, fmt, id_col, train_name, test_name, inf)
    used = {id_col, label_spec.get("column"), images.get("column")} | set(classes)
    group = _group_column(train, used, inf)
    metric = METRICS_BY_KIND[submission["kind"]]
    inf.task.update(
        tables={
            "train": train_name,
            "labels": labels_name,
            "test": test_name,
            "submission_format": fmt_name,
        },
        id_column=id_col,
        images=images,
        labels=label_spec,
        classes=list(classes),
        group_column=group,
        submission=submission,
        metric=metric,
        camera_trap=None,
    )
    inf.found.append(f"submission: {submission['kind']}; metric: {metric} (its default)")
    if submission["kind"] == "label":
        alternatives = "macro_f1"
    else:
        alternatives = "accuracy | macro_f1" + (" | roc_auc" if len(classes) == 2 else "")
    inf.undecided.append(
        f"metric: the data cannot say how the competition scores; set `metric:` if it is not "
        f"{metric} ({alternatives})"
    )
    inf.undecided.append(
        "camera_trap: left null (info-bar clock, day hours, blank class, taxonomy); set it "
        "for camera-trap photos to use meta, sequences and the field formats"
    )
    return inf


def _pick_required(names: list[str], wanted: tuple[str, ...], role: str, root: Path) -> str:
    """The CSV playing `role`, which the folder must have."""
    name = _pick(names, wanted, role, root, required=True)
    assert name is not None  # required: _pick raised instead
    return name


def _pick(
    names: list[str], wanted: tuple[str, ...], role: str, root: Path, required: bool = False
) -> str | None:
    """The CSV playing `role`: an exact name first, then a name starting or ending with one."""
    stems = {n: n.rsplit(".", 1)[0].lower() for n in names}
    for word in wanted:
        exact = [n for n, s in stems.items() if s == word]
        if exact:
            return exact[0]
    for word in wanted:
        near = [n for n, s in stems.items() if s.startswith(word) or s.endswith(word)]
        if near:
            return near[0]
    if required:
        raise TaskInferError(
            f"{root}: no {role} table among {', '.join(names) or 'no CSV files'} (expected a "
            f"name like {', '.join(w + '.csv' for w in wanted[:3])}); rename it or write the "
            "task file by hand (docs: Your own competition)"
        )
    return None


def _read(path: Path) -> pd.DataFrame:
    """Every cell as the string written: ids such as `0012` stay themselves."""
    return read_csv(path, TaskInferError, dtype=str, keep_default_na=False)


def _id_column(
    fmt: pd.DataFrame,
    train: pd.DataFrame,
    labels: pd.DataFrame | None,
    test: pd.DataFrame | None,
    root: Path,
    fmt_name: str,
    train_name: str,
) -> str:
    id_col = str(fmt.columns[0])
    for table, name in ((train, train_name), (labels, "labels"), (test, "test")):
        if table is not None and id_col not in table.columns:
            raise TaskInferError(
                f"{root / (train_name if table is train else name)}: no column '{id_col}' (the "
                f"id column of {fmt_name}, its first column); every table must name the ids alike"
            )
    dup = train.loc[train[id_col].duplicated(), id_col]
    if len(dup):
        raise TaskInferError(f"{root / train_name}: duplicate ids in '{id_col}': {few_ids(dup)}")
    return id_col


def _is_number(values: Iterable[str]) -> bool:
    try:
        [float(v) for v in values]
    except ValueError:
        return False
    return True


def _submission(fmt: pd.DataFrame, id_col: str, path: Path) -> tuple[dict[str, Any], list[str]]:
    """The kind from the format's other columns: one per class (numbers), or one label column."""
    cols = [str(c) for c in fmt.columns if c != id_col]
    if len(cols) >= 2 and all(_is_number(fmt[c]) for c in cols):
        return {"kind": "probabilities", "label_column": None}, cols
    if len(cols) == 1:
        return {"kind": "label", "label_column": cols[0]}, []
    raise TaskInferError(
        f"{path}: columns {', '.join(map(str, fmt.columns))} fit neither submission kind: after "
        f"the id '{id_col}' a format needs one numeric column per class (probabilities) or one "
        "label column; is this the submission format?"
    )


def _labels(
    train: pd.DataFrame,
    labels: pd.DataFrame | None,
    id_col: str,
    submission: dict[str, Any],
    classes: list[str],
    root: Path,
    inf: Inference,
) -> tuple[dict[str, Any], list[str]]:
    """One-hot class columns, or one label column; the classes in their stated order."""
    table = labels if labels is not None else train
    onehot = [c for c in table.columns if c != id_col and _is_01(table[c])]
    if classes and (set(classes) <= set(table.columns) or len(onehot) >= 2):
        # A separate labels table's 0/1 columns are all classes; train.csv may hold other flags.
        extra = [c for c in onehot if c not in classes] if labels is not None else []
        lacking = [c for c in classes if c not in table.columns]
        if extra or lacking:
            what = (
                f"name class(es) {', '.join(extra)} that the submission format does not have"
                if extra
                else f"lack the format's class column(s) {', '.join(lacking)}"
            )
            raise TaskInferError(
                f"{root}: the one-hot labels {what} (its classes: {', '.join(classes)}); fix "
                "the tables or the format"
            )
        inf.found.append(f"labels: one-hot columns; classes: {len(classes)} in the format's order")
        return {"kind": "onehot", "column": None}, classes
    column = _label_column(table, id_col, submission, onehot)
    if column is None:
        raise TaskInferError(
            f"{root}: no label column found (looked for one-hot class columns and for "
            f"{', '.join(LABEL_COLUMNS[:5])}, ...); write `labels:` in the task file by hand"
        )
    if not classes:
        classes = sorted(set(table[column]) - {""})
        inf.found.append(
            f"labels: column '{column}'; classes: {len(classes)}, sorted (a label submission "
            "states no order; reorder `classes:` if you like: every prediction file follows it)"
        )
    else:
        inf.found.append(
            f"labels: column '{column}'; classes: {len(classes)} in the format's order"
        )
    return {"kind": "column", "column": column}, classes


def _is_01(values: pd.Series) -> bool:
    return bool(len(values)) and set(values.str.strip()) <= {"0", "1", "0.0", "1.0"}


def _label_column(
    table: pd.DataFrame, id_col: str, submission: dict[str, Any], onehot: list[str]
) -> str | None:
    wanted = [submission.get("label_column"), *LABEL_COLUMNS]
    for name in wanted:
        for col in table.columns:
            if name is not None and col.lower() == str(name).lower():
                return str(col)
    rest = [c for c in table.columns if c != id_col and c not in onehot]
    return str(rest[0]) if len(rest) == 1 and len(onehot) < 2 else None


def _check_label_values(
    table: pd.DataFrame,
    spec: dict[str, Any],
    classes: list[str],
    id_col: str,
    root: Path,
    where: str,
) -> None:
    if spec["kind"] != "column":
        return
    values = table[spec["column"]]
    unknown = sorted(set(values) - set(classes))
    if unknown:
        ids = table.loc[values.isin(unknown), id_col]
        raise TaskInferError(
            f"{root / where}: labels name class(es) {', '.join(map(repr, unknown))} that the "
            f"submission format does not have (its classes: {', '.join(classes)}); ids "
            f"{few_ids(ids)}"
        )


def _images(
    root: Path,
    train: pd.DataFrame,
    test: pd.DataFrame | None,
    fmt: pd.DataFrame,
    id_col: str,
    train_name: str,
    test_name: str | None,
    inf: Inference,
) -> dict[str, Any]:
    """A path column when the train and test tables both have one, else a pattern per split
    found from the files (the test ids are then the format's, which names no path)."""
    path_col = _path_column(train, id_col)
    if path_col is not None and test is not None and path_col in test.columns:
        missing = [p for p in train[path_col].head(20) if not (root / p).is_file()]
        if missing:
            inf.undecided.append(
                f"images: {len(missing)} of the first {min(20, len(train))} paths of "
                f"'{path_col}' are not files under {root} (e.g. {missing[0]}): images not "
                "downloaded yet? `check-data` checks them all"
            )
        inf.found.append(f"images: column '{path_col}' (paths relative to the data folder)")
        return {"column": path_col, "train_pattern": None, "test_pattern": None}
    files = _image_files(root)
    train_ids = list(train[id_col])
    test_ids = list((test if test is not None else fmt)[id_col])
    patterns = {}
    for split, ids, where in (
        ("train", train_ids, train_name),
        ("test", test_ids, test_name or "the format"),
    ):
        patterns[split] = _pattern(files, ids, root, where, split)
    inf.found.append(
        f"images: train_pattern {patterns['train']}, test_pattern {patterns['test']} "
        f"(found for all {len(train_ids)} + {len(test_ids)} ids)"
    )
    return {"column": None, "train_pattern": patterns["train"], "test_pattern": patterns["test"]}


def _path_column(train: pd.DataFrame, id_col: str) -> str | None:
    for col in sorted(train.columns, key=lambda c: c.lower() not in PATH_WORDS):
        if col == id_col:
            continue
        sample = train[col].head(50).str.lower()
        if (
            len(sample)
            and sample.str.endswith(IMAGE_SUFFIXES).all()
            and sample.str.contains("/").any()
        ):
            return str(col)
    return None


def _image_files(root: Path) -> dict[str, list[PurePosixPath]]:
    """Every image under `root` by its name and by its stem (the two ways an id names it)."""
    found: dict[str, list[PurePosixPath]] = {}
    for path in root.rglob("*"):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            rel = PurePosixPath(path.relative_to(root).as_posix())
            found.setdefault(rel.name, []).append(rel)
            found.setdefault(rel.stem, []).append(rel)
    return found


def _pattern(
    files: dict[str, list[PurePosixPath]], ids: list[str], root: Path, where: str, split: str
) -> str:
    """`folder/{id}.ext`, or `folder/**/{id}.ext` when the images lie in sub-folders."""
    named_with_suffix = bool(ids) and all(
        PurePosixPath(i).suffix.lower() in IMAGE_SUFFIXES for i in ids
    )
    hits: dict[str, PurePosixPath] = {}
    for image_id in ids:
        candidates = [p for p in files.get(image_id, []) if split in p.as_posix().lower()]
        candidates = candidates or files.get(image_id, [])
        if candidates:
            hits[image_id] = candidates[0]
    missing = [i for i in ids if i not in hits]
    if missing:
        raise TaskInferError(
            f"{root}: no image file for {len(missing)} of {len(ids)} {split} ids of {where} "
            f"(e.g. {few_ids(missing)}); each id must name a file (id.jpg, id.png, ...) under "
            "the data folder"
        )
    suffixes = {p.suffix for p in hits.values()}
    if len(suffixes) > 1 and not named_with_suffix:
        raise TaskInferError(
            f"{root}: the {split} images mix suffixes {', '.join(sorted(suffixes))}; set "
            f"images.{split}_pattern by hand (one suffix per pattern)"
        )
    parents = [p.parent.parts for p in hits.values()]
    common: list[str] = []
    for parts in zip(*parents, strict=False):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    deeper = any(len(p) > len(common) for p in parents)
    name = "{id}" if named_with_suffix else "{id}" + suffixes.pop()
    return "/".join([*common, *(["**"] if deeper else []), name])


def _group_column(train: pd.DataFrame, used: set[Any], inf: Inference) -> str | None:
    """A column naming where an image comes from: by its name, with fewer values than rows."""
    candidates = []
    for col in train.columns:
        if col in used:
            continue
        words = re.split(r"[^a-z]+", str(col).lower())
        rank = min((GROUP_WORDS.index(w) for w in words if w in GROUP_WORDS), default=None)
        n = train[col].nunique()
        if rank is not None and 2 <= n < len(train):
            candidates.append((rank, str(col), n))
    candidates.sort()
    if not candidates:
        inf.undecided.append(
            "group_column: no column names where an image comes from (site, location, camera, "
            "patient, ...): folds are stratified and assume test images come from the training "
            "groups; set `group_column: NAME` if a column says it"
        )
        return None
    _, chosen, n = candidates[0]
    inf.found.append(f"group_column: {chosen} ({n} values; folds keep each one in one fold)")
    if len(candidates) > 1:
        others = ", ".join(c for _, c, _ in candidates[1:])
        inf.undecided.append(
            f"group_column: also possible: {others}; set `group_column:` to the one the test "
            "images do not share with training"
        )
    return chosen
