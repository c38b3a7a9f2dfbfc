"""The reference pages, written from the code: every command's parser and every stage config.

Commands: each `kaggle-style` command's argparse parser, built as `kaggle_style.cli` builds it.
Config keys: every class decorated `@stage_config` in `kaggle_style/` (found in the source, so a
new one needs no list here), each field's type, default, range or choices, and its description:
pydantic's `description`, else the attribute docstring under the field, else the comment on
its line.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
import io
import os
import re
import tokenize
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "kaggle_style"
_UNIONS = (typing.Union, types.UnionType)


# --- commands -------------------------------------------------------------------------------


def command_parsers() -> dict[str, tuple[str, argparse.ArgumentParser]]:
    """command -> (one-line help, its parser), in the order `kaggle-style --help` lists them."""
    from kaggle_style import cli

    os.environ["COLUMNS"] = "100"  # the usage lines wrap the same on every machine
    top = cli._top_parser()
    subparsers = [a for a in top._actions if isinstance(a, argparse._SubParsersAction)]
    if subparsers:  # commands registered as argparse sub-commands
        helps = {a.dest: a.help or "" for a in subparsers[0]._choices_actions}
        return {n: (helps.get(n, ""), p) for n, p in subparsers[0].choices.items()}
    out: dict[str, tuple[str, argparse.ArgumentParser]] = {}
    if hasattr(cli, "build_parser"):  # the registry builds each command's parser itself
        return {name: (help_, cli.build_parser(name)) for name, (_, help_) in cli.COMMANDS.items()}
    for name, (module_name, help_) in cli.COMMANDS.items():  # as `cli.main` builds one
        module = importlib.import_module(f"{cli.STAGES}.{module_name}")
        parser = argparse.ArgumentParser(prog=f"kaggle-style {name}", description=help_)
        if getattr(module, "MULTI_STAGE", False):
            module.add_arguments(parser, name)
        else:
            module.add_arguments(parser)
        out[name] = (help_, parser)
    return out


def commands_page() -> str:
    parsers = command_parsers()
    lines = [
        "# Commands",
        "",
        "Every `kaggle-style` command with every option, written at build time from the",
        "command's own parser (`kaggle-style COMMAND --help` prints the same). Config keys that",
        "a command also reads from `--config FILE` and `--set KEY=VALUE` are on",
        "[Config keys](config.md). Errors are one line and exit 2; `kaggle-style --debug",
        "COMMAND` shows the traceback.",
        "",
        "| command | what it does |",
        "|---|---|",
    ]
    lines += [f"| [`{name}`](#{name}) | {_cell(help_)} |" for name, (help_, _) in parsers.items()]
    for name, (help_, parser) in parsers.items():
        lines += ["", f"## {name} {{#{name}}}", "", _cell(help_), ""]
        lines += ["```text", parser.format_usage().strip(), "```", ""]
        rows = [_action_row(a) for a in parser._actions if not isinstance(a, argparse._HelpAction)]
        if rows:
            lines += ["| argument | default | help |", "|---|---|---|", *rows]
    return "\n".join(lines) + "\n"


def _action_row(action: argparse.Action) -> str:
    if action.option_strings:
        flags = ", ".join(action.option_strings)
        if action.nargs != 0:
            flags += " " + _metavar(action)
    else:
        flags = _metavar(action)
    default = action.default
    shown = "" if default in (None, argparse.SUPPRESS, [], False) else f"`{default}`"
    text = action.help or ""
    if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
        text += (
            (" " if text else "") + "(one of " + ", ".join(f"`{c}`" for c in action.choices) + ")"
        )
    if action.required:
        text += " (required)"
    return f"| `{flags}` | {shown} | {_cell(text % vars(action) if '%(' in text else text)} |"


def _metavar(action: argparse.Action) -> str:
    name = action.metavar or (action.dest.upper() if action.option_strings else action.dest)
    if isinstance(name, tuple):
        name = " ".join(name)
    return {"+": f"{name} [{name} ...]", "*": f"[{name} ...]", "?": f"[{name}]"}.get(
        str(action.nargs), name
    )


# --- config keys ----------------------------------------------------------------------------


def stage_config_classes() -> Iterator[tuple[str, ast.ClassDef, str]]:
    """(module, class node, source) of every `@stage_config` class under kaggle_style/."""
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        if "@stage_config" not in source:
            continue
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for node in ast.parse(source).body:
            if isinstance(node, ast.ClassDef) and any(
                _decorator_name(d) == "stage_config" for d in node.decorator_list
            ):
                yield module, node, source


def _decorator_name(node: ast.expr) -> str:
    node = node.func if isinstance(node, ast.Call) else node
    return node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")


def config_page() -> str:
    lines = [
        "# Config keys",
        "",
        "Every key of every stage config, written at build time from the typed config classes",
        "(the `@stage_config` pydantic dataclasses). A key is set, lowest to highest, by its",
        "default, a YAML file (`--config FILE`), `--set KEY=VALUE` and an explicit flag; an",
        "unknown key or a value outside its type or range is one error line before any work.",
        "",
    ]
    found = list(stage_config_classes())
    lines += ["| config | module | used by |", "|---|---|---|"]
    users = _commands_using([node.name for _, node, _ in found])
    for module, node, _ in found:
        used = ", ".join(f"[`{c}`](commands.md#{c})" for c in users.get(node.name, []))
        lines.append(f"| [`{node.name}`](#{node.name.lower()}) | `{module}` | {used} |")
    for module, node, source in found:
        cls = getattr(importlib.import_module(module), node.name)
        doc = ast.get_docstring(node) or ""
        lines += ["", f"## {node.name} {{#{node.name.lower()}}}", "", f"`{module}.{node.name}`"]
        if doc:
            lines += ["", doc.strip().split("\n\n")[0].replace("\n", " ")]
        lines += ["", "| key | type | default | allowed | description |", "|---|---|---|---|---|"]
        notes = _field_notes(node, source)
        infos = getattr(cls, "__pydantic_fields__", {})
        hints = typing.get_type_hints(cls, include_extras=True)
        for f in dataclasses.fields(cls):
            info = infos.get(f.name)
            description = getattr(info, "description", None) or notes.get(f.name, "")
            hint = hints.get(f.name, f.type)
            lines.append(
                f"| `{f.name}` {{#{node.name.lower()}-{f.name}}} | {_cell(_type_text(hint))} "
                f"| {_cell(_default_text(f, info))} | {_cell(_allowed_text(hint))} "
                f"| {_cell(description)} |"
            )
    return "\n".join(lines) + "\n"


def _commands_using(class_names: list[str]) -> dict[str, list[str]]:
    """class -> the commands whose stage module names it (read from kaggle_style/stages/)."""
    from kaggle_style import cli

    out: dict[str, list[str]] = {}
    modules = {name: module for name, (module, _) in getattr(cli, "COMMANDS", {}).items()}
    for command, module in modules.items():
        path = PACKAGE / "stages" / f"{module}.py"
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        for name in class_names:
            if re.search(rf"\b{name}\b", text):
                out.setdefault(name, []).append(command)
    return out


def _field_notes(node: ast.ClassDef, source: str) -> dict[str, str]:
    """field -> its attribute docstring, else the comment at the end of its line."""
    comments = {
        tok.start[0]: tok.string.lstrip("#").strip()
        for tok in tokenize.generate_tokens(io.StringIO(source).readline)
        if tok.type == tokenize.COMMENT
    }
    out: dict[str, str] = {}
    body = node.body
    for i, item in enumerate(body):
        if not isinstance(item, ast.AnnAssign) or not isinstance(item.target, ast.Name):
            continue
        name = item.target.id
        after = body[i + 1] if i + 1 < len(body) else None
        if (
            isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            out[name] = " ".join(after.value.value.split())
        elif item.end_lineno in comments:
            out[name] = comments[item.end_lineno]
    return out


def _members(hint: Any) -> list[Any]:
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        return _members(typing.get_args(hint)[0])
    if origin in _UNIONS:
        return [m for a in typing.get_args(hint) for m in _members(a)]
    return [hint]


def _type_text(hint: Any) -> str:
    names: list[str] = []
    for member in _members(hint):
        origin, args = typing.get_origin(member), typing.get_args(member)
        if origin is typing.Literal:
            name = "choice"
        elif origin in (list, tuple):
            inner = " or ".join(dict.fromkeys(_type_text(a) for a in args[:1])) or "any"
            name = f"list of {inner}"
        elif origin is dict or member is dict:
            name = "mapping"
        elif member is type(None):
            name = "null"
        elif member is typing.Any:
            name = "any"
        elif getattr(member, "__name__", "") == "StrictBool" or member is bool:
            name = "bool"
        else:
            name = getattr(member, "__name__", str(member)).replace("typing.", "")
        names.append(name)
    return " or ".join(dict.fromkeys(names))


def _allowed_text(hint: Any) -> str:
    choices = [
        c
        for m in _members(hint)
        if typing.get_origin(m) is typing.Literal
        for c in typing.get_args(m)
    ]
    if choices:
        return ", ".join(f"`{c}`" for c in choices)
    bounds: dict[str, Any] = {}
    for info in _metadata(hint):
        for constraint in [info, *getattr(info, "metadata", [])]:
            for name in ("ge", "gt", "le", "lt"):
                if getattr(constraint, name, None) is not None:
                    bounds[name] = getattr(constraint, name)
    low = bounds.get("gt", bounds.get("ge"))
    high = bounds.get("lt", bounds.get("le"))
    if low is not None and high is not None:
        left, right = "(" if "gt" in bounds else "[", ")" if "lt" in bounds else "]"
        return f"{left}{low:g}, {high:g}{right}"
    if low is not None:
        return f"{'>' if 'gt' in bounds else '≥'} {low:g}"
    if high is not None:
        return f"{'<' if 'lt' in bounds else '≤'} {high:g}"
    return ""


def _metadata(hint: Any) -> list[Any]:
    args = typing.get_args(hint)
    if typing.get_origin(hint) is typing.Annotated:
        return [*args[1:], *_metadata(args[0])]
    if typing.get_origin(hint) in _UNIONS:
        return [m for a in args for m in _metadata(a)]
    return []


def _default_text(f: dataclasses.Field[Any], info: Any) -> str:
    """The default as YAML writes it; pydantic's field info first (a `Field(default, ...)`)."""
    from pydantic_core import PydanticUndefined

    default = getattr(info, "default", PydanticUndefined)
    factory = getattr(info, "default_factory", None)
    if info is None:
        default = f.default if f.default is not dataclasses.MISSING else PydanticUndefined
        factory = None if f.default_factory is dataclasses.MISSING else f.default_factory
    if default is not PydanticUndefined:
        value = default
    elif factory is not None:
        value = factory()
    else:
        return "(required)"
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, Path):
        value = str(value)
    return f"`{value!r}`" if isinstance(value, str) and not value else f"`{value}`"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


# --- make targets ---------------------------------------------------------------------------

MAKEFILES = (
    ("Makefile", "The pipeline"),
    ("make/more.mk", "Tuning, checks, housekeeping"),
    ("benchmarks/Makefile", "Benchmarks, the lent-GPU check, developers' tests"),
)


def make_page() -> str:
    """Every `target: ... ## what it does` line of the Makefile and the two files it includes."""
    lines = [
        "# Make targets",
        "",
        "Written at build time from the `## ` comments of the Makefile and the files it includes",
        "(`make help` prints the same). Every target runs from the checkout's root; variables are",
        "given on the command line (`make train SET=fast DATA=/data/conservision`).",
    ]
    for name, title in MAKEFILES:
        lines += ["", f"## {title}", "", f"`{name}`", "", "| target | what it does |", "|---|---|"]
        seen: set[str] = set()
        for line in (ROOT / name).read_text(encoding="utf-8").splitlines():
            found = re.match(r"^([a-zA-Z_-]+):.*?## (.*)$", line)
            if found and found[1] not in seen:
                seen.add(found[1])
                lines.append(f"| `make {found[1]}` | {_cell(found[2])} |")
    lines += ["", "## Variables", "", "| variable | default |", "|---|---|"]
    for line in (ROOT / "Makefile").read_text(encoding="utf-8").splitlines():
        found = re.match(r"^([A-Z_]+) \?= ?(.*)$", line)
        if found:
            default = found[2].split("#")[0].strip()
            lines.append(f"| `{found[1]}` | {f'`{default}`' if default else '(empty)'} |")
    return "\n".join(lines) + "\n"


# --- the task file ----------------------------------------------------------------------------


def task_page() -> str:
    """Every key of a task file (`configs/tasks/NAME.yaml`), from `kaggle_style.task.Task`."""
    from kaggle_style.task import Task

    lines = [
        "# Task file keys",
        "",
        "A competition is one task file, `configs/tasks/NAME.yaml` ([your own",
        "competition](../how-to/own-competition.md)); this page is written at build time from",
        "`kaggle_style.task.Task`. Unknown keys and impossible combinations are one error line.",
        "",
        "| key | type | default | allowed | description |",
        "|---|---|---|---|---|",
    ]
    lines += _model_rows(Task, "")
    return "\n".join(lines) + "\n"


def _model_rows(model: Any, prefix: str) -> list[str]:
    """A row per field of a pydantic model, the fields of a nested model after it as `a.b`."""
    from pydantic import BaseModel

    rows = []
    for name, info in model.model_fields.items():
        key = f"{prefix}{name}"
        hint = info.annotation
        nested = [
            a
            for a in (hint, *typing.get_args(hint))
            if isinstance(a, type) and issubclass(a, BaseModel)
        ]
        if info.is_required():
            default = "required"
        elif nested:
            default = "null" if info.default is None else "its keys' defaults"
        else:
            default = _yaml_text(info.get_default(call_default_factory=True))
        anchor = key.replace(".", "-").replace("_", "-")
        rows.append(
            f"| `{key}` {{#{anchor}}} | {_cell(_type_text(hint))} | {_cell(default)} "
            f"| {_cell(_allowed_text(hint))} | {_cell(info.description or '')} |"
        )
        for sub in nested:
            rows += _model_rows(sub, f"{key}.")
    return rows


def _yaml_text(value: Any) -> str:
    """A default as a task file would write it."""
    import yaml

    text = yaml.safe_dump(
        list(value) if isinstance(value, tuple) else value, default_flow_style=True
    )
    return text.strip().removesuffix("...").strip()
