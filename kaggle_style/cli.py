"""`kaggle-style <command>`: the one entry point, one subcommand per stage module.

A stage's module is imported only when that stage runs, so `--help` is instant and a stage's
heavy imports (torch, timm) never slow down another's. `COMMANDS` below is the registry as data
(name -> module, help); each module in `kaggle_style.stages` declares its commands as
`COMMANDS = {name: Command(arguments, run)}`, and `build_parser(name)` builds one's parser.

A mistake the user can fix (`UserError`, and the usual OS and YAML errors on the user's files)
is printed as one line, `kaggle-style <command>: error: <message>`, with exit status 2; the
traceback is shown only with `kaggle-style --debug <command>` or `KAGGLE_STYLE_DEBUG=1`.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from kaggle_style.errors import UserError

STAGES = "kaggle_style.stages"
USER_ERROR_STATUS = 2
DEBUG_ENV = "KAGGLE_STYLE_DEBUG"

# command -> (module under kaggle_style.stages, one-line help). The order is the pipeline's.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo-data": ("demo_data", "generate the embedded demo dataset"),
    "task": ("task", "infer a competition's task file from its data folder; other-layout demos"),
    "check-data": ("check_data", "check a DrivenData folder: files, columns, ids, sites, images"),
    "folds": ("folds", "site-grouped, class-stratified folds -> folds/folds.csv"),
    "detect": ("detect", "run an animal detector once -> MegaDetector JSON"),
    "crop": ("crop", "cache crops at several thresholds + a manifest"),
    "show-detections": ("show_detections", "draw detection boxes on images into PNGs"),
    "meta": ("meta", "read time and camera from the info bar; sequences -> meta.csv"),
    "train": ("train", "train a timm backbone on every fold -> oof.csv, test.csv"),
    "tune": ("tune", "one worker of a shared Optuna study over a config's search space"),
    "tune-export": ("tune", "write a study's best trial as a train config"),
    "slurm-train": ("launch", "submit every recipe's unfinished folds as a Slurm job array"),
    "slurm-tune": ("launch", "start N Optuna workers of one study as Slurm jobs"),
    "dashboard": ("dashboard", "optuna-dashboard for a study storage, on 127.0.0.1"),
    "model-set": ("model_set", "the models of a named set (configs/sets/NAME.yaml)"),
    "ensemble": ("ensemble", "blend runs' OOF predictions, temperature-scale, adapt sites"),
    "submit": ("submit", "write and validate a submission CSV"),
    "validate": ("submit", "check a submission file against the format"),
    "score": ("submit", "score OOF or submission-shaped predictions"),
    "predict": ("predict", "class probabilities for any folder of images"),
    "export": ("export", "a run's test predictions as Camtrap DP, MegaDetector JSON, records"),
    "report": ("report", "HTML report: tables, confusion, calibration, sites"),
    "summary": ("summary", "the demo's closing summary of a run and its submission"),
    "lb-check": ("lb_check", "hold out whole sites as a pseudo-leaderboard and score each stage"),
    "clean-cache": ("clean_cache", "remove stale image-cache files and temp files"),
}

# OS errors that mean "this path of yours is wrong", not "the code is wrong".
_PATH_ERRNOS = {
    errno.ENOENT: "no such file or folder",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EISDIR: "is a folder, a file was expected",
    errno.ENOTDIR: "a part of the path is not a folder",
    errno.EEXIST: "already exists (a file where a folder is needed?)",
    errno.ENOSPC: "no space left on the disk; free some space or write elsewhere",
    errno.EDQUOT: "disk quota exceeded; free some space or write elsewhere",
    errno.EROFS: "read-only file system; write elsewhere",
}


def _top_parser() -> argparse.ArgumentParser:
    lines = [f"  {name:<16} {help_}" for name, (_, help_) in COMMANDS.items()]
    parser = argparse.ArgumentParser(
        prog="kaggle-style",
        description="Camera-trap competition submissions, one stage per subcommand.",
        epilog="commands:\n" + "\n".join(lines) + "\n\n`kaggle-style COMMAND --help` for one "
        f"command. Errors are one line (exit 2); --debug or {DEBUG_ENV}=1 shows the traceback.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of user errors")
    parser.add_argument(
        "command",
        choices=list(COMMANDS),
        metavar="COMMAND",
        help="the command to run (listed below)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes")
    while argv and argv[0] == "--debug":
        debug, argv = True, argv[1:]
    if not argv or argv[0] not in COMMANDS:
        _top_parser().parse_args(argv)  # prints help or the error, and exits
        return USER_ERROR_STATUS
    name, rest = argv[0], argv[1:]
    try:
        module = _stage_module(name)
    except _MissingStage as err:
        print(f"kaggle-style {name}: error: {err}", file=sys.stderr)
        return 1
    command = module.COMMANDS[name]
    args = _parser(name, command).parse_args(rest)
    try:
        return int(command.run(args) or 0)
    except KeyboardInterrupt:
        print(f"kaggle-style {name}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        message = user_error_message(err, args)
        if message is None:
            raise
        if debug:
            traceback.print_exc()
        print(f"kaggle-style {name}: error: {message}", file=sys.stderr)
        return USER_ERROR_STATUS


def build_parser(name: str) -> argparse.ArgumentParser:
    """The parser of command `name`, without running it (for the reference pages and tests)."""
    return _parser(name, _stage_module(name).COMMANDS[name])


def _parser(name: str, command: Any) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"kaggle-style {name}", description=COMMANDS[name][1])
    command.arguments(parser)
    return parser


class _MissingStage(Exception):
    pass


def _stage_module(name: str) -> Any:
    module_name = f"{STAGES}.{COMMANDS[name][0]}"
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name != module_name:
            raise  # a dependency of the stage is missing: its own traceback says which
        raise _MissingStage(
            f"the module {module_name} of this command is not in this installation "
            "(a partial checkout?); update the package"
        ) from err


def user_error_message(err: BaseException, args: argparse.Namespace | None = None) -> str | None:
    """The one-line message for an error the user can fix, or None for a bug (traceback)."""
    if isinstance(err, UserError):
        return one_line(str(err))
    if isinstance(err, OSError) and err.errno in _PATH_ERRNOS:
        where = err.filename if err.filename is not None else "a file of this command"
        return one_line(f"{where}: {_PATH_ERRNOS[err.errno]} (--debug shows where it happened)")
    if isinstance(err, UnicodeDecodeError):
        return one_line(
            f"{_file_arguments(args)}: a file is not UTF-8 text (byte {err.start} is "
            f"{err.object[err.start : err.start + 1]!r}); save it as UTF-8"
        )
    yaml_error = _yaml_error_type()
    if yaml_error is not None and isinstance(err, yaml_error):
        mark = getattr(err, "problem_mark", None)
        where = _file_arguments(args)
        if mark is not None and not str(mark.name).startswith("<"):
            where = f"{mark.name}: line {mark.line + 1}"
        elif mark is not None:
            where += f" (line {mark.line + 1})"
        problem = getattr(err, "problem", None) or type(err).__name__
        return one_line(f"{where}: malformed YAML ({problem}); fix the file")
    return None


def one_line(message: str) -> str:
    """A multi-line message joined into one line (a list after a colon stays readable)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    out = lines[0] if lines else "(no message)"
    for line in lines[1:]:
        out += (" " if out.endswith(":") else "; ") + line
    return out


def _file_arguments(args: argparse.Namespace | None) -> str:
    """The existing files among a command's arguments: the best 'where' when the error has none."""
    paths: list[str] = []
    for value in vars(args).values() if args is not None else ():
        for item in value if isinstance(value, list | tuple) else [value]:
            if isinstance(item, str | Path) and str(item) and Path(item).is_file():
                paths.append(str(item))
    if not paths:
        return "a file read by this command"
    return paths[0] if len(paths) == 1 else "one of " + ", ".join(paths)


def _yaml_error_type() -> type[Exception] | None:
    yaml = sys.modules.get("yaml")  # only a stage that imported yaml can raise its errors
    return getattr(yaml, "YAMLError", None) if yaml is not None else None
