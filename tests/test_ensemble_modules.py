"""The shape of `kaggle_style/ensemble/` a newcomer reads: modules neither tiny nor huge, and a
package docstring that names each module in the order its imports go (top imports below)."""

from __future__ import annotations

import re
from pathlib import Path

import grimp
import pytest

import kaggle_style.ensemble

PACKAGE = Path(kaggle_style.ensemble.__file__).parent
MODULES = sorted(p for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
FEWEST_LINES, MOST_LINES = 80, 400  # below: fold it into its caller; above: split it


def _listed() -> list[str]:
    """The modules the package docstring describes, top to bottom ("- name.py: what it holds")."""
    return re.findall(r"^- (\w+)\.py:", kaggle_style.ensemble.__doc__ or "", flags=re.MULTILINE)


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_no_module_of_the_ensemble_is_under_80_lines_or_over_400(module: Path) -> None:
    lines = len(module.read_text().splitlines())
    assert FEWEST_LINES <= lines <= MOST_LINES, f"{module.name}: {lines} lines"


def test_the_package_docstring_says_what_each_module_holds() -> None:
    assert sorted(_listed()) == sorted(p.stem for p in MODULES)


def test_every_import_inside_the_ensemble_goes_down_the_docstrings_list() -> None:
    """So the list is also the order to read the package in, bottom up (no module needs one
    above it); `if TYPE_CHECKING:` and function-level imports count."""
    order = {name: rank for rank, name in enumerate(_listed())}
    graph = grimp.build_graph("kaggle_style", cache_dir=None)
    upward = []
    for importer in sorted(order):
        for imported in graph.find_modules_directly_imported_by(
            f"kaggle_style.ensemble.{importer}"
        ):
            name = imported.removeprefix("kaggle_style.ensemble.")
            if name in order and order[name] <= order[importer]:
                upward.append(f"{importer} -> {name}")
    assert not upward, f"imports up the list: {upward}"
    assert len(order) >= 10  # the check ran over the package, not over an empty list
