"""`python -m benchmarks.wheel_check` (`make wheel-check`): the package works installed alone.

An editable install hides what the wheel leaves out (a folder without `__init__.py`, a data
file) and what the code finds only beside a checkout (`../shared`). So this builds the wheel from
a copy of the checkout's files, checks its file list, installs it (not editable) into a fresh
venv, and runs the commands a user starts with from an empty folder with PYTHONPATH unset. The
venv reaches the third-party packages of the running environment through a `.pth` line (the
code under test comes only from the wheel; a `.pth` path line runs no other `.pth` file, so an
editable install there stays out).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "kaggle_style"
REPO = Path(__file__).resolve().parents[1]
FORBIDDEN_TEXT = "../shared"  # a path beside a checkout: nowhere once installed
# Folders a checkout may hold that are no part of a build (outputs, environments).
SKIP = {
    ".git",
    ".venv",
    "build",
    "dist",
    "data",
    "runs",
    "cache",
    "crops",
    "studies",
    "reports",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
}
FORMAT = "id,antelope_duiker,bird,blank,civet_genet,hog,leopard,monkey_prosimian,rodent\n"


class WheelCheckFailed(RuntimeError):
    """The wheel misses something or its commands fail: a packaging bug, with what went wrong."""


def source_copy(out: Path) -> Path:
    """The checkout's tracked and untracked-but-not-ignored files, copied into `out` (a build
    writes `build/` and `*.egg-info` beside its sources: the checkout stays clean)."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if listed.returncode == 0:
        for name in filter(None, listed.stdout.split("\0")):
            source = REPO / name
            if source.is_file():
                (out / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, out / name)
        return out
    shutil.copytree(
        REPO, out, dirs_exist_ok=True, ignore=lambda _, names: [n for n in names if n in SKIP]
    )
    return out


def build_wheel(source: Path, dist: Path) -> Path:
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            str(source),
            "-w",
            str(dist),
        ],
        "pip wheel",
    )
    wheels = sorted(dist.glob("*.whl"))
    if len(wheels) != 1:
        raise WheelCheckFailed(f"pip wheel made {len(wheels)} wheels in {dist}, not one")
    return wheels[0]


def check_contents(wheel: Path, source: Path) -> list[str]:
    """The wheel holds the package's every module and nothing else of the checkout: no
    benchmarks, no tests, no text naming a path beside the checkout."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        texts = {
            n: archive.read(n).decode(errors="replace")
            for n in names
            if n.endswith((".py", ".txt", ".json", ".yaml", ".cfg"))
        }
    tops = {n.split("/")[0] for n in names}
    extra = sorted(t for t in tops if t != PACKAGE and not t.endswith(".dist-info"))
    if extra:
        raise WheelCheckFailed(f"{wheel.name} holds {', '.join(extra)} beside {PACKAGE}")
    shipped = {n for n in names if n.endswith(".py")}
    # every file of the package: a module, or data it reads (the copy holds no __pycache__)
    expected = {
        p.relative_to(source).as_posix() for p in (source / PACKAGE).rglob("*") if p.is_file()
    }
    if expected - set(names):
        raise WheelCheckFailed(
            f"{wheel.name} lacks {', '.join(sorted(expected - set(names))[:5])}"
            " (a folder without __init__.py, or data not in package-data?)"
        )
    naming = sorted(n for n, text in texts.items() if FORBIDDEN_TEXT in text)
    if naming:
        raise WheelCheckFailed(f"{', '.join(naming)} in {wheel.name} name {FORBIDDEN_TEXT}")
    return sorted(shipped)


def make_venv(venv: Path, wheel: Path) -> Path:
    """A fresh venv with the wheel installed (not editable), seeing this environment's
    third-party packages; returns its `kaggle-style` script."""
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], "venv")
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    outer = Path(sysconfig.get_paths()["purelib"]).resolve()
    (Path(purelib) / "_outer_packages.pth").write_text(f"{outer}\n")
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        "pip install",
    )
    return venv / "bin" / "kaggle-style"


def run_commands(venv: Path, script: Path, work: Path) -> list[str]:
    """The commands a new user runs first, from an empty folder with PYTHONPATH unset."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "KAGGLE_STYLE_SHARED_DATA", "PYTHONHOME")
    }
    where = _run(
        [
            str(venv / "bin" / "python"),
            "-c",
            f"import {PACKAGE}, importlib.util as u; print({PACKAGE}.__file__); "
            "print(u.find_spec('benchmarks') is not None)",
        ],
        "import",
        work,
        env,
    )
    location, benchmarks_found = where.splitlines()[-2:]
    if not Path(location).resolve().is_relative_to(venv.resolve()):
        raise WheelCheckFailed(f"{PACKAGE} was imported from {location}, not from the venv")
    if benchmarks_found != "False":
        raise WheelCheckFailed("the installed venv can import `benchmarks`")
    done = [f"import {PACKAGE} from {location}"]
    for args in (["--help"], ["validate", "--help"], ["predict", "--help"]):
        _run([str(script), *args], "kaggle-style " + " ".join(args), work, env)
        done.append("kaggle-style " + " ".join(args))
    (work / "format.csv").write_text(FORMAT + "A1" + ",0.125" * 8 + "\nA2" + ",0.125" * 8 + "\n")
    (work / "good.csv").write_text(FORMAT + "A1,1,0,0,0,0,0,0,0\nA2" + ",0.125" * 8 + "\n")
    (work / "bad.csv").write_text(FORMAT + "A1,1,0,0,0,0,0,0,0\n")
    _run([str(script), "validate", "good.csv", "--format", "format.csv"], "validate", work, env)
    bad = subprocess.run(
        [str(script), "validate", "bad.csv", "--format", "format.csv"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    if bad.returncode != 2 or len(bad.stderr.strip().splitlines()) != 1:
        raise WheelCheckFailed(
            f"validate of a submission missing a row: exit {bad.returncode} "
            f"(expected 2 and one line): {bad.stderr.strip()[-500:]}"
        )
    done.append("kaggle-style validate: a good file passes, a short one is one line, exit 2")
    return done


def wheel_check(work: Path) -> list[str]:
    """Every step above in `work`; returns one line per step that passed."""
    source = source_copy(work / "src")
    wheel = build_wheel(source, work / "dist")
    modules = check_contents(wheel, source)
    lines = [f"{wheel.name}: {len(modules)} modules, only {PACKAGE}, no {FORBIDDEN_TEXT}"]
    script = make_venv(work / "venv", wheel)
    (work / "cwd").mkdir()
    return lines + run_commands(work / "venv", script, work / "cwd")


def _run(
    cmd: list[str], what: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise WheelCheckFailed(
            f"{what} failed (exit {done.returncode}): "
            f"{(done.stderr or done.stdout).strip()[-1500:]}"
        )
    return done.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.wheel_check", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--keep", type=Path, help="work here and keep it (default: a temporary folder, removed)"
    )
    args = parser.parse_args(argv)
    try:
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=False)
            lines = wheel_check(args.keep)
        else:
            with tempfile.TemporaryDirectory(prefix="wheel_check_") as tmp:
                lines = wheel_check(Path(tmp))
    except WheelCheckFailed as err:
        print(f"wheel-check: FAILED: {err}", file=sys.stderr)
        return 1
    print("\n".join(f"ok  {line}" for line in lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
