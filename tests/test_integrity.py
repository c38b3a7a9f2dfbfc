"""Run integrity against a hostile user: whole model files, outputs that never overwrite inputs,
YAML bombs, interrupted reports, ids that look missing, hostile names, stale files and full
disks. Each ends in one clear line (exit 2) or is survived; nothing is lost."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy.special import softmax

from kaggle_style import cli
from kaggle_style.constants import ID_COL, METRICS_FILE, OOF_FILE, SITE_COL, TEST_FILE
from kaggle_style.data.tables import load_competition_data
from kaggle_style.errors import UserError
from kaggle_style.files import DiskFullError, parse_yaml, read_csv, write_json
from kaggle_style.metrics import score
from kaggle_style.prediction_files import make_frame, read_predictions, write_predictions
from kaggle_style.run_contract import DONE_FILE, MODEL_FILE, check_run
from kaggle_style.task import CONSERVISION_CLASSES as CLASSES
from kaggle_style.task import SUBMISSION_FORMAT, TEST_FEATURES, TRAIN_FEATURES, TRAIN_LABELS

REPO = Path(__file__).resolve().parents[1]


def _one_line(capsys: pytest.CaptureFixture[str], *names: str) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


def _model_run(root: Path, n_folds: int = 2) -> Path:
    """A finished model run: every fold done under one hash, whole weights, combined files."""
    from safetensors.numpy import save_file

    run = root / "run"
    ids = [f"Z{i}" for i in range(8)]
    probs = np.full((8, len(CLASSES)), 1 / len(CLASSES))
    for fold in range(n_folds):
        folder = run / f"fold{fold}"
        folder.mkdir(parents=True)
        write_predictions(folder / OOF_FILE, make_frame(ids, probs, [fold] * 8, classes=CLASSES))
        save_file({"w": np.zeros(64, dtype=np.float32)}, str(folder / MODEL_FILE))
        write_json(folder / DONE_FILE, {"model_hash": "abc"})
    time.sleep(0.01)
    write_predictions(run / OOF_FILE, make_frame(ids, probs, [0] * 8, classes=CLASSES))
    return run


def test_a_missing_fold_model_is_refused_where_weights_are_read(tmp_path: Path) -> None:
    run = _model_run(tmp_path)
    check_run(run, models=True)
    (run / "fold1" / MODEL_FILE).unlink()
    check_run(run)  # the OOF readers (ensemble, report) need no weights
    with pytest.raises(UserError, match=r"fold1/model\.safetensors: missing") as err:
        check_run(run, models=True)  # predict would average the other folds
    assert "\n" not in str(err.value)


def test_predict_refuses_a_run_missing_a_fold_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _model_run(tmp_path)
    (run / "config.yaml").write_text("model_hash: abc\nbackbone: resnet18\n")
    (run / "fold0" / MODEL_FILE).unlink()
    images = tmp_path / "images"
    images.mkdir()
    Image.new("RGB", (64, 48)).save(images / "a.jpg")
    argv = [
        "predict",
        "--images",
        str(images),
        "--run",
        str(run),
        "--out",
        str(tmp_path / "p.csv"),
        "--no-detector",
        "--no-meta",
        "--quiet",
    ]
    assert cli.main(argv) == 2
    _one_line(capsys, "fold0/model.safetensors: missing")
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.parametrize("victim", [MODEL_FILE, DONE_FILE])
def test_a_truncated_model_or_done_file_is_one_line_naming_it(tmp_path: Path, victim: str) -> None:
    run = _model_run(tmp_path)
    path = run / "fold0" / victim
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(UserError) as err:
        check_run(run, models=True)
    message = str(err.value)
    assert str(path) in message and "\n" not in message and "kaggle-style train" in message


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A DrivenData folder whose ids and sites pandas would read as missing, and hostile names."""
    root = tmp_path / "DATA"
    (root / "train_features").mkdir(parents=True)
    (root / "test_features").mkdir()
    ids = ["NA", "null", "nan", "None", "<b>id</b>", "Z$1$", "Z\\frac{", "Z7"]
    sites = ["NA", "null", "<script>alert(1)</script>", "$\\frac{$", "None", "NA", "null", "S1"]
    labels = [CLASSES[i % len(CLASSES)] for i in range(len(ids))]
    rows = []
    for k, (image_id, site) in enumerate(zip(ids, sites, strict=True)):
        name = f"train_features/img{k}.jpg"
        Image.new("RGB", (64, 48), (30 * k, 80, 120)).save(root / name)
        rows.append((image_id, name, site))
    frame = pd.DataFrame(rows, columns=[ID_COL, "filepath", SITE_COL])
    frame.to_csv(root / TRAIN_FEATURES, index=False)
    onehot = pd.DataFrame(0.0, index=range(len(ids)), columns=list(CLASSES))
    for k, label in enumerate(labels):
        onehot.loc[k, label] = 1.0
    onehot.insert(0, ID_COL, ids)
    onehot.to_csv(root / TRAIN_LABELS, index=False)
    Image.new("RGB", (64, 48)).save(root / "test_features" / "t.jpg")
    pd.DataFrame(
        [("T1", "test_features/t.jpg", "S9")], columns=[ID_COL, "filepath", SITE_COL]
    ).to_csv(root / TEST_FEATURES, index=False)
    return root


def test_ids_and_sites_pandas_reads_as_missing_stay_strings(data_dir: Path, tmp_path: Path) -> None:
    data = load_competition_data(data_dir)
    assert list(data.train[ID_COL][:4]) == ["NA", "null", "nan", "None"]
    assert list(data.train[SITE_COL][:2]) == ["NA", "null"]
    path = tmp_path / "oof.csv"
    write_predictions(
        path, make_frame(data.train[ID_COL], np.full((8, 8), 1 / 8), [0] * 8, classes=CLASSES)
    )
    assert list(read_predictions(path)[ID_COL][:4]) == ["NA", "null", "nan", "None"]
    table = tmp_path / "t.csv"
    table.write_text("id,site,conf\nNA,null,NA\n,None,0.5\n")
    frame = read_csv(table)
    assert frame[ID_COL].tolist() == ["NA", ""] and frame[SITE_COL].tolist() == ["null", "None"]
    assert np.isnan(frame["conf"][0]) and frame["conf"][1] == 0.5  # numbers keep NA = missing


def _fake_run(folder: Path, data: Path, seed: int) -> Path:
    ds = load_competition_data(data)
    rng = np.random.default_rng(seed)
    y = ds.train["label"].map({c: i for i, c in enumerate(CLASSES)}).to_numpy()
    oof = softmax(rng.normal(0, 1, (len(y), len(CLASSES))), axis=1)
    write_predictions(
        folder / OOF_FILE, make_frame(ds.train[ID_COL], oof, np.arange(len(y)) % 2, classes=CLASSES)
    )
    write_predictions(
        folder / TEST_FILE, make_frame(ds.test[ID_COL], np.full((1, 8), 1 / 8), classes=CLASSES)
    )
    write_json(folder / METRICS_FILE, {"overall": score(y, oof, CLASSES), "per_fold": {}})
    return folder


def test_hostile_names_reach_the_report_as_escaped_text(data_dir: Path, tmp_path: Path) -> None:
    """Ids, sites and run names with HTML, mathtext and `$` are escaped text in the page and
    plain text in the figures (matplotlib would otherwise fail on `$\\frac{$`)."""
    run = _fake_run(tmp_path / "runs" / "$\\frac{$<i>", data_dir, 0)
    out = tmp_path / "reports" / "r"
    assert cli.main(["report", str(run), "--data", str(data_dir), "--out", str(out)]) == 0
    page = (out / "index.html").read_text()
    assert "<script>" not in page and "<b>id</b>" not in page and "<i>" not in page
    assert "&lt;i&gt;" in page
    for name in os.listdir(out):
        assert "/" not in name and not name.startswith(".")


def test_report_folder_changes_as_one_unit(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Report: an interrupted report leaves the old page with its own figures, and a new report
    leaves no figure of an older one beside it."""
    from kaggle_style.report import page as report_page

    run = _fake_run(tmp_path / "runs" / "a", data_dir, 0)
    out = tmp_path / "reports" / "r"
    assert cli.main(["report", str(run), "--data", str(data_dir), "--out", str(out)]) == 0
    (out / "stale_figure.png").write_bytes(b"from an older report")
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def killed(*args: object, **kwargs: object) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(report_page, "gallery", killed)  # dies after the figures are drawn
    _fake_run(run, data_dir, 1)  # new figures
    assert cli.main(["report", str(run), "--data", str(data_dir), "--out", str(out)]) == 130
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in out.parent.iterdir()] == ["r"]  # no temporary folder left
    monkeypatch.undo()
    assert cli.main(["report", str(run), "--data", str(data_dir), "--out", str(out)]) == 0
    assert not (out / "stale_figure.png").exists()


def test_no_stage_writes_its_output_over_an_input_or_the_data(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = [_fake_run(tmp_path / "runs" / name, data_dir, k) for k, name in enumerate("AB")]
    a, b = map(str, runs)
    labels = data_dir / TRAIN_LABELS
    (data_dir / SUBMISSION_FORMAT).write_text("id," + ",".join(CLASSES) + "\n")
    before = labels.read_bytes()
    cases = {
        "ensemble": ["ensemble", a, b, "--data", str(data_dir), "--out", a],
        "submit": [
            "submit",
            "--predictions",
            str(runs[0] / TEST_FILE),
            "--format",
            str(data_dir / SUBMISSION_FORMAT),
            "--out",
            str(labels),
        ],
        "report": ["report", a, "--data", str(data_dir), "--out", str(tmp_path / "runs")],
        "meta": ["meta", "--data", str(data_dir), "--out", str(data_dir / "meta.csv")],
        "folds": ["folds", "--data", str(data_dir), "--out", str(data_dir / "folds.csv")],
        "crop": [
            "crop",
            "--data",
            str(data_dir),
            "--detections",
            str(tmp_path / "d.json"),
            "--out",
            str(data_dir / "crops"),
        ],
    }
    for stage, argv in cases.items():
        assert cli.main(argv) == 2, stage
        line = _one_line(capsys)
        assert line.startswith(f"kaggle-style {stage}: error: ") and "write the output" in line
    assert labels.read_bytes() == before and sorted(p.name for p in runs[0].iterdir()) == [
        METRICS_FILE,
        OOF_FILE,
        TEST_FILE,
    ]
    assert not (data_dir / "meta.csv").exists() and not (data_dir / "folds.csv").exists()


BOMB = """a: &a [x, x, x, x, x, x, x, x, x, x]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
epochs: *h
"""


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("bomb", BOMB),
        ("flow", "epochs: " + "[" * 5000 + "]" * 5000 + "\n"),
        ("block", "".join(f"{' ' * k}k{k}:\n" for k in range(3000)) + " " * 3000 + "x: 1\n"),
        ("loop", "a: &a [*a]\n"),
    ],
)
def test_hostile_yaml_is_one_line_within_seconds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str
) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    started = time.perf_counter()
    with pytest.raises(UserError, match="malformed YAML"):
        parse_yaml(text, str(path))
    for argv in (
        ["folds", "--config", str(path)],
        ["ensemble", "--config", str(path)],
        ["model-set", str(path)],
    ):
        assert cli.main(argv) == 2, argv
        _one_line(capsys, str(path), "malformed YAML")
    assert time.perf_counter() - started < 10
    assert parse_yaml("a: &x [1, 2]\nb: *x\n", "ok.yaml") == {"a": [1, 2], "b": [1, 2]}


def test_a_full_disk_is_one_line_naming_the_folder_with_no_temp_file_left(tmp_path: Path) -> None:
    """Any output (atomic_path) on a full disk: one line naming the folder, no temp file left.
    RLIMIT_FSIZE in a real subprocess stands for the full disk."""
    out = tmp_path / "outputs"
    script = textwrap.dedent(f"""
        import resource, sys
        import pandas as pd
        from kaggle_style.files import write_csv
        from kaggle_style.cli import user_error_message
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
        try:
            write_csv({str(out / "big.csv")!r}, pd.DataFrame({{"x": range(100_000)}}))
        except Exception as err:
            print(user_error_message(err))
            sys.exit(2)
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert f"disk full while writing big.csv in {out}" in done.stdout
    assert "File too large" in done.stdout and list(out.iterdir()) == []


def test_show_detections_leaves_no_image_of_an_older_call(tmp_path: Path) -> None:
    """show-detections writes its folder as one unit: no PNG of an older call remains."""
    from kaggle_style.detect import mdjson

    images = tmp_path / "images"
    images.mkdir()
    for name in ("a", "b"):
        Image.new("RGB", (64, 48)).save(images / f"{name}.jpg")
    dets = mdjson.DetectionFile(
        images={
            "a.jpg": [mdjson.Detection("1", 0.9, (0.1, 0.1, 0.3, 0.3))],
            "b.jpg": [mdjson.Detection("1", 0.8, (0.2, 0.2, 0.3, 0.3))],
        },
        info={"detector": "hand-made"},
    )
    det_path = tmp_path / "d.json"
    mdjson.write(det_path, dets)
    out = tmp_path / "shown"
    assert (
        cli.main(
            [
                "show-detections",
                "--detections",
                str(det_path),
                "--images",
                str(images),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert sorted(os.listdir(out)) == ["a.png", "b.png"]
    assert (
        cli.main(
            [
                "show-detections",
                "--detections",
                str(det_path),
                "--images",
                str(images),
                "--out",
                str(out),
                "--limit",
                "1",
            ]
        )
        == 0
    )
    assert sorted(os.listdir(out)) == ["a.png"]


def test_no_writer_holds_a_full_disk_check_of_its_own() -> None:
    """One detector in files: the modules that write big files hold no errno lists of their own."""
    offenders = [
        str(p.relative_to(REPO))
        for p in (REPO / "kaggle_style").rglob("*.py")
        if p.name != "files.py"
        and ("errno.ENOSPC" in p.read_text() or "No space left" in p.read_text())
    ]
    assert offenders in ([], ["kaggle_style/cli.py"]), offenders  # cli: errors of its own


def test_full_disk_error_class_is_a_user_error() -> None:
    assert issubclass(DiskFullError, UserError)


def _config_error_keys() -> list[tuple[str, str, set[str], str]]:
    """(module, class, its fields, the keys its ConfigError message names before the first ':')
    for each literal message raised in a config class."""
    import ast
    import re

    found = []
    for path in sorted((REPO / "kaggle_style").rglob("*.py")):
        for cls in ast.walk(ast.parse(path.read_text())):
            if not isinstance(cls, ast.ClassDef) or not (
                cls.name.endswith("Config") or cls.name == "ModelSet"
            ):
                continue
            fields = {
                n.target.id
                for n in cls.body
                if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)
            }
            for node in ast.walk(cls):
                if not (
                    isinstance(node, ast.Raise)
                    and isinstance(node.exc, ast.Call)
                    and getattr(node.exc.func, "id", "") == "ConfigError"
                    and node.exc.args
                ):
                    continue
                arg = node.exc.args[0]
                head = arg.values[0] if isinstance(arg, ast.JoinedStr) else arg
                if isinstance(head, ast.Constant) and isinstance(head.value, str):
                    keys = re.split(r"[:]", head.value, maxsplit=1)[0]
                    found.append((path.name, cls.name, fields, keys))
    return found


def test_config_errors_start_with_a_key_that_exists() -> None:
    """A config's error starts with the key(s) a user sets (`thresholds: ...`), never a name
    that is no key (`crop: ...`, `time` for `time_adjust`)."""
    checked = _config_error_keys()
    assert len(checked) >= 10
    for module, cls, fields, keys in checked:
        named = [k for k in re.findall(r"[A-Za-z_][\w]*", keys) if "_" in k or k.islower()]
        named = [k for k in named if not k.isdigit()]
        assert named and set(named[:1]) <= fields, (module, cls, keys)


def test_a_hand_edited_meta_csv_is_one_line_in_report(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _fake_run(tmp_path / "runs" / "a", data_dir, 0)
    meta = tmp_path / "meta.csv"
    meta.write_text(
        "id,datetime,hour,camera,night,confidence,sequence\n"
        "NA,2017-03-19T05:37:45+02:00,5.6,,1,0.9,S/0\n"
    )
    argv = [
        "report",
        str(run),
        "--data",
        str(data_dir),
        "--out",
        str(tmp_path / "r"),
        "--meta",
        str(meta),
    ]
    assert cli.main(argv) == 2
    _one_line(capsys, str(meta), "column 'datetime'", "NA", "without a UTC offset")
    assert not (tmp_path / "r").exists()
