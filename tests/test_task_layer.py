"""Only the task layer names Conser-vision's class list and DrivenData's table names: every
other module takes classes from the task or from a prediction file's columns."""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "kaggle_style"
# task.py; task_infer.py, which recognises DrivenData's and Kaggle's file names to write a task;
# outputs/taxonomy.py, the taxonomy Conser-vision's task names (camera_trap.taxonomy); and the
# demo generator (demo/), which writes a Conser-vision folder
ALLOWED = {"task.py", "task_infer.py", "outputs/taxonomy.py"}


def modules_naming(pattern: str) -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel in ALLOWED or rel.startswith("demo/"):
            continue
        if re.search(pattern, path.read_text()):
            found.append(rel)
    return found


def test_no_module_outside_the_task_layer_names_the_class_list() -> None:
    assert modules_naming(r"CLASSES|CLASS_INDEX|antelope_duiker") == []


def test_no_module_outside_the_task_layer_names_drivendata_label_or_format_tables() -> None:
    assert modules_naming(r"TRAIN_LABELS|SUBMISSION_FORMAT|submission_format\.csv") == []
