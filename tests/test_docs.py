"""The documentation site and the user's Makefile: the site builds strict (no broken link or
anchor), its reference pages cover every command and config key, README stays short, the Makefile
keeps few targets and `make install` never runs apt-get."""

from __future__ import annotations

import dataclasses
import html.parser
import importlib
import os
import re
import subprocess
import sys
import typing
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

REPO = Path(__file__).resolve().parents[1]
VENV = Path(sys.executable).parents[1]
sys.path.insert(0, str(REPO / "docs" / "_hooks"))
import reference_pages  # noqa: E402  (the hook's own reader of the parsers and config classes)

MAX_ROOT_TARGETS = 15
MAX_README_LINES = 200


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built as `make docs` builds it (strict: any broken link or anchor fails)."""
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [str(VENV / "bin" / "mkdocs"), "build", "--strict", "--quiet", "--site-dir", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(str(values["id"]))
        if tag == "a" and values.get("href"):
            self.hrefs.append(str(values["href"]))


def _parsed(page: Path) -> _Links:
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


@pytest.mark.heavy  # builds the site (about 10 s on 2 cores) for the tests of this file
def test_the_built_site_has_no_broken_internal_link_or_anchor(site: Path) -> None:
    pages = {page: _parsed(page) for page in site.rglob("*.html")}
    broken = []
    for page, parsed in pages.items():
        for href in parsed.hrefs:
            parts = urlsplit(href)
            if parts.scheme or parts.netloc:
                continue  # an outside address: not this site's to check
            base = site if parts.path.startswith("/") else page.parent  # 404.html: from the root
            path = unquote(parts.path).lstrip("/")
            target = (base / path).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(site)}: {href} (no such page)")
            elif parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _parsed(target).ids
                if unquote(parts.fragment) not in ids:
                    broken.append(f"{page.relative_to(site)}: {href} (no such anchor)")
    assert len(pages) > 20
    assert not broken, "\n".join(broken[:20])


def test_the_command_reference_lists_every_command_and_option(site: Path) -> None:
    page = _parsed(site / "reference" / "commands" / "index.html")
    text = (site / "reference" / "commands" / "index.html").read_text(encoding="utf-8")
    parsers = reference_pages.command_parsers()
    from kaggle_style import cli

    assert set(getattr(cli, "COMMANDS", parsers)) <= set(parsers)
    for name, (_, parser) in parsers.items():
        assert name in page.ids, f"no section for `kaggle-style {name}`"
        for action in parser._actions:
            for flag in action.option_strings:
                assert flag in text, f"`kaggle-style {name} {flag}` is missing from the reference"


def test_the_config_reference_lists_every_key_of_every_stage_config(site: Path) -> None:
    page = _parsed(site / "reference" / "config" / "index.html")
    found = list(reference_pages.stage_config_classes())
    assert len(found) >= 10  # TrainConfig, EnsembleConfig, TuneConfig, … are all found
    for module, node, _ in found:
        cls = getattr(importlib.import_module(module), node.name)
        assert node.name.lower() in page.ids
        for field in dataclasses.fields(cls):
            assert f"{node.name.lower()}-{field.name}" in page.ids, f"{node.name}.{field.name}"


def test_the_task_reference_lists_every_key_of_the_task_file(site: Path) -> None:
    from pydantic import BaseModel

    from kaggle_style.task import Task

    page = _parsed(site / "reference" / "task" / "index.html")

    def keys(model: type[BaseModel], prefix: str) -> list[str]:
        out = []
        for name, info in model.model_fields.items():
            out.append(f"{prefix}{name}")
            for arg in (info.annotation, *typing.get_args(info.annotation)):
                if isinstance(arg, type) and issubclass(arg, BaseModel):
                    out += keys(arg, f"{prefix}{name}.")
        return out

    expected = keys(Task, "")
    assert {"tables.submission_format", "submission.label_column", "camera_trap.day_hours"} <= set(
        expected
    )
    for key in expected:
        assert key.replace(".", "-").replace("_", "-") in page.ids, key


def test_every_measured_figure_keeps_its_machine_and_date(site: Path) -> None:
    results = sorted((REPO / "benchmarks" / "results").glob("*.json"))
    assert results
    for path in results:
        page = site / "measured" / path.stem / "index.html"
        text = page.read_text(encoding="utf-8")
        assert "Machine:" in text and "Date:" in text, path.name
        date = re.search(r"\d{4}-\d{2}-\d{2}", path.stem)
        assert date is not None and date[0] in text, f"{path.name}: its date is not on its page"


def _targets(makefile: Path) -> set[str]:
    """Named targets a file defines (`name:` rules; not files, patterns or variables)."""
    text = makefile.read_text(encoding="utf-8")
    return set(re.findall(r"^([a-z][a-z0-9-]*):(?!=)", text, flags=re.MULTILINE))


def test_the_root_makefile_defines_at_most_15_targets_and_includes_the_rest() -> None:
    root = _targets(REPO / "Makefile")
    assert len(root) <= MAX_ROOT_TARGETS, sorted(root)
    assert {"install", "demo", "test", "docs", "help"} <= root
    bench = _targets(REPO / "benchmarks" / "Makefile")
    assert {"bench", "gpu-carry", "gpu-check-lent", "wheel-check"} <= bench
    assert not bench & root
    help_text = subprocess.run(
        ["make", "-C", str(REPO), "help"], capture_output=True, text=True, timeout=60
    ).stdout
    for target in root | bench | _targets(REPO / "make" / "more.mk"):
        listed = re.search(rf"m{re.escape(target)} +\x1b", help_text)  # its coloured name
        assert listed, f"`make help` does not list {target}"


def test_make_install_prints_the_tesseract_command_instead_of_running_apt_get(
    tmp_path: Path,
) -> None:
    planned = subprocess.run(
        ["make", "-C", str(REPO), "-n", "-B", "install", f"VENV={tmp_path}/venv"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert planned.returncode == 0, planned.stderr
    lines = planned.stdout.replace("\\\n", " ").splitlines()
    for line in lines:  # apt-get may be named in a message, never run
        assert "apt-get" not in re.sub(r'echo "[^"]*"', "", line), line
    (check,) = [line for line in lines if "tesseract" in line]
    empty = tmp_path / "bin"
    empty.mkdir()
    missing = subprocess.run(
        ["/bin/bash", "-c", check], capture_output=True, text=True, env={"PATH": str(empty)}
    )
    assert missing.returncode == 0
    assert "apt-get install -y tesseract-ocr" in missing.stdout


def test_every_relative_link_of_readme_names_a_file_of_the_checkout() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    local = [link for link in links if not urlsplit(link).scheme]
    assert len(local) >= 10
    assert not [link for link in local if not (REPO / link).exists()]


def test_readme_is_short_and_keeps_the_two_commands() -> None:
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES
    text = "\n".join(lines)
    assert "make demo" in text and "make test" in text
    assert {"demo", "test"} <= _targets(REPO / "Makefile")
