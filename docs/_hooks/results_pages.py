"""The measured figures, rendered from the JSON files under `benchmarks/results/`.

A results file is one measurement: its `title`, the `machine` and `date` it ran on, the `command`
that made it, and prose (`intro`, `notes`, Markdown) around `tables` ({caption, columns, rows}).
`raw` names JSON lines the benchmark printed (`*.jsonl` beside it, said by `raw_caption`),
shown folded under the page.
Each file is one page under `measured/`, listed newest first.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REQUIRED = ("title", "machine", "date")


def results(folder: Path) -> list[tuple[str, dict[str, Any]]]:
    """(page name, document) of every results file, newest first; a malformed one fails."""
    out = []
    for path in sorted(folder.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        missing = [k for k in REQUIRED if not doc.get(k)]
        if missing:
            raise ValueError(f"{path}: results file without {', '.join(missing)}")
        out.append((path.stem, doc))
    return sorted(out, key=lambda item: (item[1]["date"], item[0]), reverse=True)


def nav(folder: Path) -> list[Any]:
    return ["measured/index.md"] + [
        {f"{doc['date']}: {doc['title']}": f"measured/{name}.md"} for name, doc in results(folder)
    ]


def pages(folder: Path) -> dict[str, str]:
    found = results(folder)
    index = [
        "# Measured",
        "",
        "Every figure below was measured on the machine named, on the date given; rerun the",
        "command to check it. Each page is rendered at build time from one JSON file in",
        "`benchmarks/results/` (named `<what>_<machine>_<date>.json`): to add a measurement, add",
        "a file there.",
        "",
        "| date | machine | what |",
        "|---|---|---|",
    ]
    index += [
        f"| {doc['date']} | {_cell(doc['machine'])} | [{_cell(doc['title'])}]({name}.md) |"
        for name, doc in found
    ]
    out = {"measured/index.md": "\n".join(index) + "\n"}
    for name, doc in found:
        out[f"measured/{name}.md"] = _page(folder, name, doc)
    return out


def _page(folder: Path, name: str, doc: dict[str, Any]) -> str:
    lines = [
        f"# {doc['title']}",
        "",
        f"**Machine:** {doc['machine']}  ",
        f"**Date:** {doc['date']}",
    ]
    if doc.get("command"):
        lines[-1] += "  "
        lines.append(f"**Command:** `{doc['command']}`")
    lines += ["", f"*Source: `benchmarks/results/{name}.json`*", ""]
    if doc.get("intro"):
        lines += [_text(doc["intro"]), ""]
    for table in doc.get("tables", []):
        if table.get("caption"):
            lines += [_text(table["caption"]), ""]
        columns = table["columns"]
        lines += ["| " + " | ".join(_cell(c) for c in columns) + " |"]
        lines += ["|" + "---|" * len(columns)]
        for row in table["rows"]:
            if len(row) != len(columns):
                raise ValueError(
                    f"{name}.json: a row of {len(row)} cells under {len(columns)} columns"
                )
            lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
        lines.append("")
        if table.get("after"):
            lines += [_text(table["after"]), ""]
    if doc.get("notes"):
        lines += [_text(doc["notes"]), ""]
    for raw in doc.get("raw", []):
        text = (folder / raw).read_text(encoding="utf-8").strip()
        lines += [f'??? note "The JSON as printed: `{raw}`"', ""]
        if doc.get("raw_caption"):
            lines += [f"    {_text(doc['raw_caption'])}", ""]
        lines += ["    ```json"]
        lines += [f"    {line}" for line in text.splitlines()]
        lines += ["    ```", ""]
    return "\n".join(lines) + "\n"


def _text(value: str | list[str]) -> str:
    """Prose: a string, or a list of paragraphs / list items kept as written."""
    return "\n\n".join(value) if isinstance(value, list) else value


def _cell(value: Any) -> str:
    return " ".join(str(value).split()).replace("|", "\\|")
