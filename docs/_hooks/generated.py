"""mkdocs hook: the pages written from the code and from `benchmarks/results/`, at build time.

`reference/commands.md` comes from each command's argparse parser, `reference/config.md` from
every `@stage_config` class, `reference/task.md` from the task
file's model, `measured/*.md` from the JSON files under `benchmarks/results/`:
none of them is kept in git, so none can drift from what it describes.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the checkout's own code, whatever the venv's install points at
sys.path.insert(0, str(Path(__file__).resolve().parent))

import reference_pages  # noqa: E402  (needs the checkout on sys.path)
import results_pages  # noqa: E402


def on_files(files: Files, config: MkDocsConfig) -> Files:
    pages: dict[str, str] = {
        "reference/commands.md": reference_pages.commands_page(),
        "reference/config.md": reference_pages.config_page(),
        "reference/make.md": reference_pages.make_page(),
        "reference/task.md": reference_pages.task_page(),
    }
    pages.update(results_pages.pages(ROOT / "benchmarks" / "results"))
    for uri, text in pages.items():
        files.append(File.generated(config, uri, content=text))
    return files


def on_config(config: MkDocsConfig, **_: Any) -> MkDocsConfig:
    """The measured pages' nav entries, one per results file (their titles from the files)."""
    measured = results_pages.nav(ROOT / "benchmarks" / "results")
    for section in config.nav or []:
        if isinstance(section, dict) and "Measured" in section:
            section["Measured"] = measured
    return config
