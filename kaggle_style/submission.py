"""Write, validate and score submission files (the library behind `submit | validate | score`).

A rejected upload costs a day's submission slot, so `submit` checks the file it wrote before
that file replaces the previous one, and `validate` lists every problem at once rather than
stopping at the first.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kaggle_style.constants import FOLD_COL, ID_COL, LABEL_COL, SUM_TOLERANCE
from kaggle_style.data.tables import read_format, read_labels
from kaggle_style.errors import UserError, few_ids
from kaggle_style.files import atomic_path, check_outputs, read_csv
from kaggle_style.metrics import format_summary, log_loss, score
from kaggle_style.prediction_files import check_predictions, classes_of, read_predictions
from kaggle_style.task import Task, conservision

# Clipping bounds the damage of one confident mistake (log(1e-6) ~ -13.8 instead of -34.5).
DEFAULT_CLIP = 1e-6
NAN_WORDS = frozenset({"", "nan", "na", "n/a", "null", "none", "-nan"})


class SubmissionError(UserError, ValueError):
    """A submission that could not be written or does not pass validation."""


def max_clip(num_classes: int) -> float:
    """A floor of 1/num_classes or more makes every row uniform: the clip must stay below it."""
    return 1.0 / num_classes


def check_clip(clip: float, num_classes: int) -> float:
    """`clip` if 0 <= clip < 1/num_classes, else a SubmissionError (such a floor would turn
    every row uniform)."""
    top = max_clip(num_classes)
    if not (isinstance(clip, int | float) and math.isfinite(clip) and 0 <= clip < top):
        raise SubmissionError(
            f"--clip {clip}: must be at least 0 and below {top:g} (1/{num_classes}: a "
            f"floor that high makes every row uniform); the default is {DEFAULT_CLIP:g}"
        )
    return float(clip)


class _Unreadable(Exception):
    """A submission file that cannot be read as CSV: a validation problem, not a crash."""


def make_submission(
    predictions_path: str | os.PathLike,
    format_path: str | os.PathLike,
    out_path: str | os.PathLike,
    clip: float = DEFAULT_CLIP,
    task: Task | None = None,
) -> Path:
    """Write `out_path` in the format file's id order and column order: probabilities clipped
    and renormalised, or (a label submission) the class of the highest calibrated probability.

    The file is validated at its temporary path; a file that fails never replaces the old one.
    """
    task = task or conservision()
    check_outputs({"--out": out_path}, {"--predictions": predictions_path, "--format": format_path})
    clip = check_clip(clip, task.num_classes)
    preds = read_predictions(predictions_path)
    task.check_classes(classes_of(preds, str(predictions_path)), str(predictions_path), False)
    fmt = read_format(format_path, task)
    id_col = task.id_column
    fmt_ids = fmt[id_col].astype(str)
    have = set(preds[ID_COL])
    lacks = [i for i in fmt_ids if i not in have]
    extra = sorted(have - set(fmt_ids))
    if lacks or extra:
        parts = []
        if lacks:
            parts.append(
                f"{len(lacks)} id(s) of the format file have no prediction: {few_ids(lacks)}"
            )
        if extra:
            parts.append(
                f"{len(extra)} predicted id(s) are not in the format file: {few_ids(extra)}"
            )
        raise SubmissionError(f"{predictions_path}: " + "; ".join(parts))
    if task.submission.kind == "label":
        out = _label_rows(preds, fmt, fmt_ids, task)
    else:
        columns = [c for c in fmt.columns if c != id_col]
        extra = sorted(set(columns) - set(task.classes))
        if extra:
            raise SubmissionError(
                f"{format_path}: column(s) {', '.join(extra)} are not classes of task "
                f"{task.name}; the format's columns must be {id_col} and the classes"
            )
        probs = preds.set_index(ID_COL).loc[pd.Index(fmt_ids), columns].to_numpy(np.float64)
        probs = np.clip(probs, clip, 1.0)
        probs = probs / probs.sum(axis=1, keepdims=True)
        out = pd.DataFrame(probs, columns=columns)
        out.insert(0, id_col, fmt_ids.to_numpy())
        out = out[list(fmt.columns)]
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp:
        out.to_csv(tmp, index=False, float_format="%.17g")
        problems, _ = check_submission(tmp, format_path, strict_order=True, task=task)
        if problems:
            raise SubmissionError(
                f"{out_path}: the written file failed validation, not replaced:\n  "
                + "\n  ".join(problems)
            )
    return out_path


def _label_rows(
    preds: pd.DataFrame, fmt: pd.DataFrame, fmt_ids: pd.Series, task: Task
) -> pd.DataFrame:
    """The format with its label column filled by each id's most probable class."""
    probs = preds.set_index(ID_COL).loc[fmt_ids, list(task.classes)].to_numpy(np.float64)
    out = fmt.copy()
    out[task.id_column] = fmt_ids.to_numpy()
    out[str(task.submission.label_column)] = np.asarray(task.classes)[probs.argmax(axis=1)]
    return out


def check_submission(
    path: str | os.PathLike,
    format_path: str | os.PathLike,
    strict_order: bool = False,
    task: Task | None = None,
) -> tuple[list[str], list[str]]:
    """(problems, notes) of a submission file; notes are facts that do not make it invalid."""
    task = task or conservision()
    id_col = task.id_column
    path = Path(path)
    fmt = read_format(format_path, task)
    try:
        sub = read_csv(path, _Unreadable, dtype=str, keep_default_na=False)
    except _Unreadable as err:
        return [str(err)], []
    problems: list[str] = []
    notes: list[str] = []
    expected_cols = list(fmt.columns)
    cols = [str(c) for c in sub.columns]
    if id_col not in cols:
        return [f"{path}: no '{id_col}' column; columns must be {', '.join(expected_cols)}"], []
    if len(sub) == 0:
        return [f"{path}: the file is empty (a header but no rows)"], []
    missing_cols = [c for c in expected_cols if c not in cols]
    extra_cols = [c for c in cols if c not in expected_cols]
    if missing_cols:
        problems.append(f"missing column(s): {', '.join(missing_cols)}")
    if extra_cols:
        problems.append(f"unexpected column(s): {', '.join(extra_cols)}")
    if not missing_cols and not extra_cols and cols != expected_cols:
        problems.append(
            f"columns are misordered: got {', '.join(cols)}; expected {', '.join(expected_cols)}"
        )
    if len(sub) != len(fmt):
        problems.append(f"wrong row count: {len(sub)} rows, the format file has {len(fmt)}")
    problems += _id_problems(sub[id_col], fmt[id_col].astype(str), strict_order, notes)
    if task.submission.kind == "label":
        problems += _label_problems(sub, str(task.submission.label_column), id_col, task)
    else:
        class_cols = [c for c in expected_cols if c != id_col and c in cols]
        problems += _value_problems(sub, class_cols, id_col, task.num_classes)
    return [f"{path}: {p}" for p in problems], notes


def _label_problems(sub: pd.DataFrame, column: str, id_col: str, task: Task) -> list[str]:
    """Each cell of a label submission names one of the task's classes."""
    if column not in sub.columns:
        return []
    values = sub[column].str.strip()
    bad = ~values.isin(task.classes)
    if not bad.any():
        return []
    return [
        f"{int(bad.sum())} label(s) in column '{column}' are not classes of task {task.name} "
        f"(e.g. {values[bad].iloc[0]!r}) in rows with ids {few_ids(sub.loc[bad, id_col])}"
    ]


def _id_problems(
    ids: pd.Series, fmt_ids: pd.Series, strict_order: bool, notes: list[str]
) -> list[str]:
    """Ids must equal the format's character for character: ' ZJ000001' is not 'ZJ000001'."""
    problems = []
    dup = ids[ids.duplicated()].unique()
    if len(dup):
        problems.append(f"{len(dup)} duplicate id(s): {few_ids(dup)}")
    have, want = set(ids), set(fmt_ids)
    extra = sorted(have - want)
    # Ids that differ only in whitespace are named with quotes (visible) and counted once.
    spaced = [i for i in extra if i.strip() in want and i.strip() not in have]
    if spaced:
        problems.append(
            f"{len(spaced)} id(s) differ from the format file only in whitespace: "
            f"{few_ids(repr(i) for i in spaced)}; remove the spaces"
        )
        have |= {i.strip() for i in spaced}
        extra = sorted(set(extra) - set(spaced))
    missing = [i for i in fmt_ids if i not in have]
    if missing:
        problems.append(f"{len(missing)} missing id(s): {few_ids(missing)}")
    if extra:
        problems.append(f"{len(extra)} extra id(s) not in the format file: {few_ids(extra)}")
    if not (missing or extra or spaced or len(dup)) and list(ids) != list(fmt_ids):
        message = "rows are in a different order than the format file"
        if strict_order:
            problems.append(f"{message} (--strict-order)")
        else:
            notes.append(f"note: {message} (allowed; ids are matched, not positions)")
    return problems


def _value_problems(
    sub: pd.DataFrame, class_cols: list[str], id_col: str, num_classes: int
) -> list[str]:
    """Cell-level problems: each kind reported once, with the rows it affects."""
    if not class_cols:
        return []
    raw = sub[class_cols].apply(lambda s: s.str.strip())
    values = raw.apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    nan_word = raw.apply(lambda s: s.str.lower().isin(NAN_WORDS)).to_numpy()
    ids = sub[id_col].to_numpy()
    problems = []
    non_numeric = np.isnan(values) & ~nan_word
    if non_numeric.any():
        cells = raw.to_numpy()[non_numeric]
        problems.append(
            f"{int(non_numeric.sum())} non-numeric cell(s) (e.g. {cells[0]!r}) "
            f"in rows with ids {few_ids(ids[non_numeric.any(axis=1)])}"
        )
    is_nan = np.isnan(values) & nan_word
    if is_nan.any():
        problems.append(
            f"{int(is_nan.sum())} NaN or empty value(s) in rows with ids "
            f"{few_ids(ids[is_nan.any(axis=1)])}"
        )
    is_inf = np.isinf(values)
    if is_inf.any():
        problems.append(
            f"{int(is_inf.sum())} infinite value(s) in rows with ids "
            f"{few_ids(ids[is_inf.any(axis=1)])}"
        )
    finite = np.isfinite(values)
    outside = finite & ((values < 0) | (values > 1))
    if outside.any():
        problems.append(
            f"{int(outside.sum())} value(s) outside [0, 1] in rows with ids "
            f"{few_ids(ids[outside.any(axis=1)])}"
        )
    complete = finite.all(axis=1) & (len(class_cols) == num_classes)
    off = complete & (np.abs(values.sum(axis=1) - 1.0) > SUM_TOLERANCE)
    if off.any():
        worst = float(np.max(np.abs(values[off].sum(axis=1) - 1.0)))
        problems.append(
            f"{int(off.sum())} row(s) whose probabilities do not sum to 1 (off by up to "
            f"{worst:.3g}, tolerance {SUM_TOLERANCE:g}): ids {few_ids(ids[off])}"
        )
    return problems


def read_scored(path: str | os.PathLike, task: Task) -> pd.DataFrame:
    """An OOF, test or submission file as a prediction frame of the task's classes: the task's
    id column read as `id`, and a label submission's labels as one-hot probabilities."""
    frame = read_csv(path, SubmissionError, text=("id", task.id_column), dtype={ID_COL: str})
    if task.id_column != ID_COL and ID_COL not in frame.columns:
        frame = frame.rename(columns={task.id_column: ID_COL})
    label_col = task.submission.label_column
    if label_col and label_col in frame.columns and not set(task.classes) <= set(frame.columns):
        labels = frame[label_col].astype(str).str.strip()
        unknown = sorted(set(labels) - set(task.classes))
        if unknown:
            raise SubmissionError(
                f"{path}: column '{label_col}' names class(es) not in task {task.name}: "
                f"{few_ids(unknown)}"
            )
        onehot = (labels.to_numpy()[:, None] == np.asarray(task.classes)[None, :]).astype(float)
        frame = pd.concat(
            [frame[[ID_COL]], pd.DataFrame(onehot, columns=list(task.classes))], axis=1
        )
    task.check_classes(classes_of(frame, str(path)), str(path), ordered=False)
    return check_predictions(frame, str(path), classes=task.classes)


def score_predictions(
    predictions_path: str | os.PathLike,
    labels_path: str | os.PathLike,
    task: Task | None = None,
) -> dict[str, Any]:
    """metrics.score of the predicted ids that have a label, plus how many were scored."""
    task = task or conservision()
    preds = read_scored(predictions_path, task)
    labels = read_labels(labels_path, task=task)
    merged = preds.merge(labels, on=ID_COL, how="inner")
    if merged.empty:
        raise SubmissionError(
            f"{predictions_path}: none of its {len(preds)} ids has a label in {labels_path}"
        )
    y = merged[LABEL_COL].map(task.class_index).to_numpy()
    probs = merged[list(task.classes)].to_numpy(np.float64)
    result = score(y, probs, task.classes, task.score_metric)
    result["n_predictions"] = len(preds)
    result["n_unlabelled"] = int(len(preds) - len(merged))
    if FOLD_COL in merged.columns:
        folds = merged[FOLD_COL].to_numpy()
        result["per_fold_log_loss"] = {
            str(f): log_loss(y[folds == f], probs[folds == f]) for f in sorted(set(folds))
        }
    return result


def format_scores(name: str, result: dict[str, Any]) -> str:
    """The printed report of `kaggle-style score`."""
    lines = [
        f"scored {result['n']} of {result['n_predictions']} predicted ids "
        f"({result['n_unlabelled']} without a label were skipped)",
        format_summary(name, result),
    ]
    if "per_fold_log_loss" in result:
        lines.append(
            "per-fold log loss: "
            + ", ".join(f"{f}: {v:.4f}" for f, v in result["per_fold_log_loss"].items())
        )
    lines.append("per-class accuracy:")
    for cls, acc in result["per_class_accuracy"].items():
        lines.append(f"  {cls:<18} {'-' if acc is None else f'{acc:.3f}'}")
    lines.append("confusion matrix (rows: true, columns: predicted):")
    width = max(6, *(len(str(v)) for row in result["confusion_matrix"] for v in row))
    short = [c[:width] for c in result["classes"]]
    lines.append(" " * 18 + " ".join(f"{c:>{width}}" for c in short))
    for cls, row in zip(result["classes"], result["confusion_matrix"], strict=True):
        lines.append(f"  {cls:<16}" + " ".join(f"{v:>{width}}" for v in row))
    return "\n".join(lines)
