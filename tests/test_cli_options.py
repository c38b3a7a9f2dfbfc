"""Each option written once: a config field is its flag, its `--help` line and its description;
commands register themselves; error messages name flags, keys and sections that exist."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import importlib
import re
from pathlib import Path
from typing import Any

import pytest

from kaggle_style import cli, config
from kaggle_style.config import ConfigError
from kaggle_style.config_flags import config_from_args, field_description, field_reference
from kaggle_style.data.folds import FoldsConfig

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "kaggle_style"
FILE_SCHEMAS = {"ModelSet"}  # a set file's keys (configs/sets/*.yaml), no command's options


@functools.cache
def _parsers() -> dict[str, argparse.ArgumentParser]:
    return {name: cli.build_parser(name) for name in cli.COMMANDS}


def _config_classes() -> list[type]:
    """Every `@stage_config` class of the package: the commands' modules and their imports."""
    for module, _ in cli.COMMANDS.values():
        importlib.import_module(f"kaggle_style.stages.{module}")
    importlib.import_module("kaggle_style.sets")
    classes = dict.fromkeys(config.STAGE_CONFIGS)  # benchmarks/ may have added their own
    return [c for c in classes if c.__module__.startswith("kaggle_style.")]


@functools.cache
def _message_strings() -> list[tuple[str, str]]:
    """(file, text) of each string literal in the message of a `raise` in kaggle_style/."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                for arg in node.exc.args:
                    found += [
                        (path.name, c.value)
                        for c in ast.walk(arg)
                        if isinstance(c, ast.Constant) and isinstance(c.value, str)
                    ]
    return found


def test_every_config_field_has_a_flag_of_its_class() -> None:
    """Each field of each stage config is some command's flag, made from that class."""
    made: dict[type, set[str]] = {}
    for parser in _parsers().values():
        for action in parser._actions:
            if hasattr(action, "config_class"):
                made.setdefault(action.config_class, set()).add(action.dest)
    classes = [c for c in _config_classes() if c.__name__ not in FILE_SCHEMAS]
    assert len(classes) >= 12
    for cls in classes:
        fields = {f.name for f in dataclasses.fields(cls)}
        assert fields - made.get(cls, set()) == set(), cls.__name__


def test_every_config_field_has_a_one_line_description() -> None:
    for cls in _config_classes():
        for item in dataclasses.fields(cls):
            text = field_description(cls, item.name)
            assert 3 <= len(text) <= 220, f"{cls.__name__}.{item.name}: {text!r}"


def test_help_shows_the_fields_range_choices_and_default() -> None:
    text = " ".join(cli.build_parser("folds").format_help().split())
    assert "--n-splits N" in text and "at least 2; default 5" in text
    assert "--group-by {site,none}" in text
    assert "--allow-outside-data, --no-allow-outside-data" in text
    train = " ".join(cli.build_parser("train").format_help().split())
    assert "--lr X" in train and "greater than 0; default 0.001" in train


def test_the_reference_entry_of_a_field_is_read_from_its_type() -> None:
    entries = {e.key: e for e in field_reference(FoldsConfig)}
    assert entries["n_splits"].flag == "--n-splits"
    assert (entries["n_splits"].kind, entries["n_splits"].range) == ("an integer", "at least 2")
    assert entries["n_splits"].default == "5"
    assert entries["group_by"].kind == "one of site, none"
    assert entries["allow_outside_data"].default == "false"
    assert entries["group_by"].description == field_description(FoldsConfig, "group_by")


def test_flags_beat_set_which_beats_the_yaml_file(tmp_path: Path) -> None:
    recipe = tmp_path / "folds.yaml"
    recipe.write_text("n_splits: 3\nseed: 7\ngroup_by: none\n")
    parser = cli.build_parser("folds")
    args = parser.parse_args(["--config", str(recipe), "--set", "n_splits=4", "seed=8"])
    cfg = config_from_args(FoldsConfig, args)
    assert (cfg.n_splits, cfg.seed, cfg.group_by) == (4, 8, "none")
    args = parser.parse_args(
        ["--config", str(recipe), "--set", "n_splits=4", "--n-splits", "6", "--group-by", "site"]
    )
    cfg = config_from_args(FoldsConfig, args)
    assert (cfg.n_splits, cfg.seed, cfg.group_by) == (6, 7, "site")


def test_a_bad_flag_value_names_the_layer_and_the_key() -> None:
    args = cli.build_parser("folds").parse_args(["--n-splits", "1"])
    with pytest.raises(ConfigError, match=r"^command line: n_splits: 1 is out of range"):
        config_from_args(FoldsConfig, args)


def test_older_flag_names_still_set_their_fields() -> None:
    """`--fold` (repeatable), `--quiet`, `--time`, `--no-detector` kept their meaning."""
    train = cli.build_parser("train").parse_args(["--fold", "0", "--fold", "2", "--quiet"])
    assert (train.folds, train.progress) == ([0, 2], False)
    slurm = cli.build_parser("slurm-train").parse_args(
        ["--config", "a.yaml", "--time", "30", "--mem", "8"]
    )
    assert (slurm.time_min, slurm.mem_gb) == (30, 8)
    predict = cli.build_parser("predict").parse_args(
        ["--images", "i", "--run", "r", "--no-detector", "--no-meta"]
    )
    assert (predict.use_detector, predict.read_meta) == (False, False)


def test_every_registered_command_is_declared_by_its_module_and_back() -> None:
    declared = {}
    for module in {m for m, _ in cli.COMMANDS.values()}:
        stage = importlib.import_module(f"kaggle_style.stages.{module}")
        declared.update(dict.fromkeys(stage.COMMANDS, module))
    assert declared == {name: module for name, (module, _) in cli.COMMANDS.items()}


def test_no_command_chains_and_few_hand_written_arguments() -> None:
    sources = {p: p.read_text() for p in PACKAGE.rglob("*.py")}
    assert not [p for p, text in sources.items() if re.search(r"if (stage|command) ==", text)]
    assert not [p for p, text in sources.items() if "MULTI_STAGE" in text]
    assert sum(text.count("add_argument") for text in sources.values()) < 60


def test_error_messages_name_flags_that_exist() -> None:
    flags = {"--debug"} | {
        option
        for parser in _parsers().values()
        for a in parser._actions
        for option in a.option_strings
    }
    named = {
        (name, flag)
        for name, text in _message_strings()
        for flag in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*[a-z0-9]", text)
    }
    assert len(named) > 20
    assert [(name, flag) for name, flag in sorted(named) if flag not in flags] == []


def test_error_messages_name_config_keys_that_exist() -> None:
    """`--set KEY=...`, `set KEY: ...` and `` `KEY: ...` `` in a message name a config key."""
    keys = {f.name for cls in _config_classes() for f in dataclasses.fields(cls)}
    pattern = r"--set ([a-z_]+)=|\bset ([a-z_]+)[:=]|`([a-z_]+): "
    named = {
        (name, "".join(groups))
        for name, text in _message_strings()
        for groups in re.findall(pattern, text)
    }
    assert len(named) >= 5
    assert [(name, key) for name, key in sorted(named) if key not in keys] == []


def test_error_messages_and_comments_name_documentation_pages_that_exist() -> None:
    """A `docs/PAGE.md` (with an optional `#anchor`) named anywhere in kaggle_style/ — a message
    or a comment — is a page of the site, and its anchor a heading of that page; a `README
    'Section'` named in a message is a heading of README.md or of a docs page."""
    named = {
        (path.name, page, anchor)
        for path in sorted(PACKAGE.rglob("*.py"))
        for page, anchor in re.findall(r"(docs/[\w/.-]+?\.md)(?:#([\w-]+))?", path.read_text())
    }
    assert len(named) >= 3
    missing = []
    for name, page, anchor in sorted(named):
        target = REPO / page
        if not target.is_file():
            missing.append((name, page))
        elif anchor and anchor not in {_slug(h) for h in _headings(target)}:
            missing.append((name, f"{page}#{anchor}"))
    assert missing == []
    pages = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    headings = [h.lower() for page in pages if page.is_file() for h in _headings(page)]
    pattern = r"README[^'\"]{0,3}['\"]([^'\"]+)['\"]|README: ([^)]+)"
    sections = {
        (name, "".join(groups))
        for name, text in _message_strings()
        for groups in re.findall(pattern, text)
    }
    assert [(n, s) for n, s in sorted(sections) if not any(s.lower() in h for h in headings)] == []


def _headings(page: Path) -> list[str]:
    return [
        line.lstrip("#").strip() for line in page.read_text().splitlines() if line.startswith("#")
    ]


def _slug(heading: str) -> str:
    """mkdocs' default anchor of a heading (toc's slugify: lower case, words joined by '-')."""
    text = re.sub(r"[^\w\s-]", "", heading.lower()).strip()
    return re.sub(r"[\s]+", "-", text)


def test_slurm_commands_build_recipes_workers_and_settings_from_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """slurm-train: each recipe named after its file, shared flags over it, SlurmSettings from
    `--slurm` and flags; slurm-tune: one TuneConfig per worker, each its own sampler seed."""
    from kaggle_style.launch import slurm

    seen: dict[str, Any] = {}
    monkeypatch.setattr(slurm, "submit_training", lambda cfgs, s, wait: seen.update(t=(cfgs, s)))
    monkeypatch.setattr(slurm, "submit_tuning", lambda workers, s, wait: seen.update(w=workers))
    recipe = tmp_path / "small.yaml"
    recipe.write_text("epochs: 2\n")
    argv = ["--config", str(recipe), "--data", "d", "--time", "30", "--slurm", "qos=high"]
    assert cli.main(["slurm-train", *argv, "--launcher", "local"]) == 0
    cfgs, settings = seen["t"]
    assert [(c.name, c.data, c.epochs, c.progress) for c in cfgs] == [("small", "d", 2, False)]
    assert (settings.time_min, settings.qos, settings.launcher) == (30, "high", "local")
    tune = ["slurm-tune", "--study", "s", "--config", str(recipe), "--set", "epochs=1"]
    assert cli.main([*tune, "--storage", "sqlite:///s.db", "--workers", "3"]) == 0
    workers = seen["w"]
    assert [(w.sampler_seed, w.quiet, w.overrides) for w in workers] == [
        (i, True, ["epochs=1"]) for i in range(3)
    ]
    assert cli.main(tune) == 2  # no --storage: every node must reach one
