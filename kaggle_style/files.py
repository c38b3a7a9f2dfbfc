"""Files in and out: atomic writes, the one CSV and YAML readers, the output and disk-full checks.

Every stage reads users' tables and YAML and writes its outputs through here, so a half-written
file, an id read as missing, a YAML bomb, an output over an input or a full disk is handled once.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from kaggle_style.constants import TEXT_COLUMNS
from kaggle_style.errors import UserError, check_name

# What a number column reads as missing: pandas' own default strings.
NUMBER_MISSING = (
    "",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "<NA>",
    "N/A",
    "NA",
    "NULL",
    "NaN",
    "None",
    "n/a",
    "nan",
    "null",
)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it into place only if the block succeeds.

    A full disk on the way becomes one `DiskFullError` naming the folder."""
    target = _output_target(path, "file")
    with disk_guard(target.parent, target.name):
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            yield tmp
            if tmp.exists():  # mkstemp makes 0600 files; outputs get the usual umask-based mode
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(tmp, 0o666 & ~umask)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                tmp.unlink()


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty folder beside `path`; it replaces `path` as one unit if the block succeeds,
    so no reader sees old files beside new ones and nothing stale survives a rewrite."""
    target = _output_target(path, "folder")
    with disk_guard(target.parent, f"{target.name}/"):
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
        old = target.with_name(f".{target.name}.{os.getpid()}.old")
        try:
            yield tmp
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o777 & ~umask)
            if target.exists():
                os.replace(target, old)  # two renames: the old folder is kept until the new is in
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(old, ignore_errors=True)


def _output_target(path: str | os.PathLike, kind: str) -> Path:
    """An output named by its own last step: `.`, `..` or none would fail half-way through the
    final rename (a temporary left behind), and a file cannot replace a folder."""
    target = Path(path)
    check_name(target.name or str(target), f"output {kind} {target}:")
    if kind == "file" and target.is_dir():
        raise UserError(f"output file {target}: is a folder; give a file name")
    return target


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    text = json.dumps(obj, indent=2, sort_keys=False, default=_json_default)
    return write_text(path, text + "\n")


def write_yaml(path: str | os.PathLike, obj: Any) -> Path:
    return write_text(path, yaml.safe_dump(obj, sort_keys=False))


def write_csv(path: str | os.PathLike, frame: pd.DataFrame, **kwargs: Any) -> Path:
    """Write a CSV with full float precision (probabilities must round-trip)."""
    kwargs.setdefault("index", False)
    kwargs.setdefault("float_format", "%.17g")
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, **kwargs)
    return Path(path)


def git_commit(cwd: str | os.PathLike | None = None) -> str:
    """The commit of the code that made an output ('unknown' outside a checkout, '+dirty')."""
    here = Path(cwd) if cwd else Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("+dirty" if dirty else "")


def pid_alive(pid: int) -> bool:
    """Whether a process of this host still runs: how lock and temp-file owners are judged."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but someone else's
        return True
    return True


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity, e.g. a container's share), not the host's."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def read_csv(
    path: str | os.PathLike,
    error: type[Exception] = UserError,
    text: tuple[str, ...] = TEXT_COLUMNS,
    **kwargs: Any,
) -> pd.DataFrame:
    """`pd.read_csv` for a user's table: ids, sites and paths (`text` columns) stay the strings
    written (`NA`, `null`, `None` are real site names; an empty cell stays ''), other columns read
    `NA` as missing; a missing, empty, non-UTF-8 or non-CSV file is one `error` naming it."""
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "file not found"
        raise error(f"{path}: {what}; check the path")
    try:
        if "keep_default_na" not in kwargs:
            header = pd.read_csv(path, nrows=0).columns
            kwargs["dtype"] = {**{c: str for c in header if c in text}, **kwargs.get("dtype", {})}
            kwargs["keep_default_na"] = False
            kwargs["na_values"] = {c: list(NUMBER_MISSING) for c in header if c not in text}
        return pd.read_csv(path, **kwargs)
    except pd.errors.EmptyDataError as err:
        raise error(f"{path}: the file is empty") from err
    except UnicodeDecodeError as err:
        bad = err.object[err.start : err.start + 1]
        raise error(
            f"{path}: not UTF-8 text (byte {err.start} is {bad!r}); save the file as UTF-8 CSV"
        ) from err
    except pd.errors.ParserError as err:
        raise error(f"{path}: not a readable CSV ({' '.join(str(err).split())})") from err


def require_rows(
    frame: pd.DataFrame, path: str | os.PathLike, error: type[Exception] = UserError
) -> pd.DataFrame:
    """A table that must hold rows (train, test, labels, submission format, meta) and has only
    its header is one `error` naming the file: zero rows would pass every other check."""
    if len(frame) == 0:
        raise error(f"{path}: holds a header but no data rows; give the file its rows")
    return frame


# errno values that mean "no room": a full disk, a quota, a file-size limit (RLIMIT_FSIZE).
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
# Below this much free space a failed write is taken for a full disk: torch's zip writer and
# safetensors wrap ENOSPC in errors that carry no errno.
LOW_SPACE = 64 * 2**20


class DiskFullError(UserError):
    """No room on the disk of an output folder: before a write (estimate) or during it."""


def human(n: float) -> str:
    """Bytes for people: 1.5 GB, 320 MB (powers of 1000, as `df -H` prints)."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def free_bytes(folder: str | os.PathLike) -> int:
    """Free bytes for an unprivileged writer on the disk that holds `folder` (or its parent)."""
    path = Path(folder).absolute()
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free


def is_disk_full(err: BaseException, folder: str | os.PathLike | None = None) -> bool:
    """The one full-disk test: a no-room errno on the error or its cause, or (for writers that
    hide the errno: torch's zip writer, safetensors) their write error while `folder`'s disk has
    almost no room left."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in DISK_FULL_ERRNOS:
            return True
        seen = seen.__cause__ or seen.__context__
    writer_error = isinstance(err, OSError | RuntimeError) or "Safetensor" in type(err).__name__
    if folder is None or not writer_error:
        return False
    try:
        return free_bytes(folder) < LOW_SPACE
    except OSError:
        return False


DISK_FIX = "free space there or write elsewhere, then rerun"


def disk_full_error(
    err: BaseException, folder: str | os.PathLike, what: str, fix: str = DISK_FIX
) -> DiskFullError:
    """The one line a full disk becomes; the caller has already removed its temporary files."""
    reason = type(err).__name__
    seen: BaseException | None = err
    while seen is not None:  # the OS's words, where a library wrapped them
        if isinstance(seen, OSError) and seen.strerror:
            reason, seen = seen.strerror, None
        else:
            seen = seen.__cause__ or seen.__context__
    return DiskFullError(
        f"disk full while writing {what} in {folder} ({reason}; {human(free_bytes(folder))} "
        f"free now, no temporary file left behind); {fix}"
    )


@contextlib.contextmanager
def disk_guard(
    folder: str | os.PathLike, what: str, fix: str = DISK_FIX, leftover: Path | None = None
) -> Iterator[None]:
    """A full disk inside the block becomes one `DiskFullError` naming `folder`; `leftover` (a
    temporary folder) is removed first. Any other error passes through untouched."""
    try:
        yield
    except DiskFullError:
        raise
    except Exception as err:
        if not is_disk_full(err, folder):
            raise
        if leftover is not None:
            shutil.rmtree(leftover, ignore_errors=True)
        raise disk_full_error(err, folder, what, fix) from err


MAX_YAML_DEPTH = 64  # configs nest a few levels; thousands would exhaust Python's recursion
MAX_YAML_NODES = 100_000  # after aliases are expanded: a few "billion laughs" lines exceed this


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses deep nesting and alias expansion beyond the limits above."""

    depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self.depth += 1
        try:
            if self.depth > MAX_YAML_DEPTH:
                raise yaml.YAMLError(f"nested deeper than {MAX_YAML_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def compose_document(self) -> yaml.Node | None:
        node = super().compose_document()
        if node is not None:
            _expanded_size(node, {}, set())
        return node


def _expanded_size(node: yaml.Node, sizes: dict[int, int], open_: set[int]) -> int:
    """Nodes in the document once every alias is copied out; too many (or a loop) is an error."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_:
        raise yaml.YAMLError("an alias refers to the collection that holds it")
    open_.add(key)
    children = node.value if isinstance(node, yaml.CollectionNode) else []
    items = (
        [x for pair in children for x in pair] if isinstance(node, yaml.MappingNode) else children
    )
    total = 1 + sum(_expanded_size(child, sizes, open_) for child in items)
    open_.discard(key)
    if total > MAX_YAML_NODES:
        raise yaml.YAMLError(f"aliases expand to more than {MAX_YAML_NODES} values")
    sizes[key] = total
    return total


def parse_yaml(text: str, where: str, error: type[Exception] = UserError) -> Any:
    """The one YAML reader for users' files (configs, sets, ensemble configs, run metadata):
    malformed, too deep or alias-bombed YAML is one `error` naming `where` and the line."""
    try:
        return yaml.load(text, Loader=_BoundedLoader)  # a SafeLoader subclass
    except (RecursionError, yaml.YAMLError) as err:
        mark = getattr(err, "problem_mark", None)
        line = f" line {mark.line + 1}, column {mark.column + 1}:" if mark is not None else ""
        raise error(f"{where}:{line} malformed YAML ({yaml_reason(err)}); fix the file") from err


def yaml_reason(err: BaseException | None) -> str:
    """Why `parse_yaml` failed, in one line: PyYAML's problem without its multi-line context."""
    if isinstance(err, RecursionError):
        return "nested too deeply"
    problem = getattr(err, "problem", None) or str(err)
    context = getattr(err, "context", None)
    return " ".join(f"{context + ', ' if context else ''}{problem}".split())


def read_yaml(
    path: str | os.PathLike,
    error: type[Exception] = UserError,
    kind: str = "YAML file",
    hint: str = "check the path",
) -> Any:
    """`parse_yaml` of a file; a missing, unreadable or non-UTF-8 file is one `error` naming it."""
    path = Path(path)
    if not path.is_file():
        what = f"is a folder, not a {kind}" if path.is_dir() else f"{kind} not found"
        raise error(f"{path}: {what}; {hint}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise error(f"{path}: not UTF-8 text (byte {err.start}); save it as UTF-8") from err
    except OSError as err:
        raise error(f"{path}: cannot read the {kind} ({err.strerror})") from err
    return parse_yaml(text, str(path), error)


def data_folder_of(path: str | os.PathLike) -> Path | None:
    """The competition folder (one holding a train table by a usual name, or a task's record
    of its layout) that `path` lies in, if any."""
    target = Path(path).resolve()
    for folder in (target, *target.parents):
        if any((folder / name).is_file() for name in DATA_FOLDER_MARKERS):
            return folder
    return None


# File names that mark a data folder, whatever the task: DrivenData's and Kaggle's train tables.
DATA_FOLDER_MARKERS = ("train_features.csv", "train.csv", "train_labels.csv")


def check_outputs(
    outputs: dict[str, str | os.PathLike | None], inputs: dict[str, str | os.PathLike | None]
) -> None:
    """Refuse, before any work, an output that is one of the command's inputs, holds one or lies
    inside one, or lies inside a data folder: a write there would destroy what it reads; or one
    whose last step is no name (`.`, `..`): it would be the folder above."""
    given = {name: Path(p).resolve() for name, p in inputs.items() if p is not None}
    for name, out in outputs.items():
        if out is None:
            continue
        check_name(Path(out).name or str(out), f"{name} {out}:")
        target = Path(out).resolve()
        for in_name, source in given.items():
            if target == source or source in target.parents or target in source.parents:
                raise UserError(
                    f"{name} {out}: overlaps the input {in_name} {source}, which "
                    "this command reads; write the output elsewhere"
                )
        data = data_folder_of(target)
        if data is not None:
            raise UserError(
                f"{name} {out}: inside the data folder {data}, which is only read; "
                "write the output elsewhere"
            )
