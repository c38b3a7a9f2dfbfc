"""No import circle anywhere in `kaggle_style/`: every module can be read bottom-up.

grimp (the graph import-linter checks its layers on) gives every import of the package, those
inside functions and under `if TYPE_CHECKING:` included; a circle is a strongly connected set of
two or more modules. The layers contract cannot see one inside a layer (`ensemble/` had two).
"""

from __future__ import annotations

from pathlib import Path

import grimp
import pytest

PACKAGE = "kaggle_style"


def import_circles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Every set of modules that import each other round a circle (Tarjan's strongly connected
    components, iterative), each sorted, largest first."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            module, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append(
                        (child, iter(sorted(graph.find_modules_directly_imported_by(child))))
                    )
                elif child in on_stack:
                    low[module] = min(low[module], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[module])
            if low[module] == index[module]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == module:
                        break
                if len(component) > 1:
                    circles.append(sorted(component))
    return sorted(circles, key=len, reverse=True)


def _described(graph: grimp.ImportGraph, circle: list[str]) -> str:
    """One circle as a path of imports back to its start, for the failure message."""
    first, *_ = circle
    back = next(m for m in graph.find_modules_directly_imported_by(first) if m in circle)
    chain = graph.find_shortest_chain(importer=back, imported=first) or (back, first)
    return " -> ".join((first, *chain))


@pytest.fixture
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(PACKAGE, cache_dir=None)


def test_no_module_of_the_package_is_in_an_import_circle(graph: grimp.ImportGraph) -> None:
    circles = import_circles(graph)
    assert not circles, "import circles: " + "; ".join(_described(graph, c) for c in circles)


def test_an_import_that_closes_a_circle_is_found(graph: grimp.ImportGraph) -> None:
    """Positive control: a low module importing a command closes a circle through every module
    between them, and the search names it."""
    command, low = "kaggle_style.stages.ensemble", "kaggle_style.files"
    assert graph.find_shortest_chain(importer=command, imported=low)
    graph.add_import(importer=low, imported=command)
    circles = import_circles(graph)
    assert len(circles) == 1
    assert {low, command} <= set(circles[0])
    assert _described(graph, circles[0]).startswith("kaggle_style.")


def test_a_circle_through_a_type_checking_import_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The two circles `ensemble/` had ran through `if TYPE_CHECKING:` imports, which never run
    but still tie the modules together: a package whose two modules import each other that way
    (and a third that imports inside a function) has its circle found."""
    package = tmp_path / "circled"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from circled.b import B\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from circled.a import A\nB = 1\n"
    )
    (package / "c.py").write_text("def f():\n    from circled import a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("circled", cache_dir=None)
    assert import_circles(graph) == [["circled.a", "circled.b"]]
