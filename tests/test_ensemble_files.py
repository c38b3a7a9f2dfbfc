"""The ensemble's files and inputs: config checks, run integrity, the typed ensemble.json, an
ensemble folder that changes as one unit, members that must not change, detection-aware
stacking through files and `predict` on real frames."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ensemble_world import (
    K,
    make_world,
    synthetic_config,
    world_config,
    write_world,
)
from PIL import Image
from safetensors.numpy import save_file

from kaggle_style.cli import main
from kaggle_style.config import ConfigError, resolve_config
from kaggle_style.constants import (
    CONFIG_FILE,
    ENSEMBLE_FILE,
    META_FILE,
    METRICS_FILE,
    OOF_FILE,
    TEST_FILE,
)
from kaggle_style.detect.mdjson import read as read_detections
from kaggle_style.ensemble import run as run_module
from kaggle_style.ensemble.base import RowFacts
from kaggle_style.ensemble.blend import Blend
from kaggle_style.ensemble.inputs import boxes_for, new_rows, read_ensemble
from kaggle_style.ensemble.run import EnsembleConfig, EnsembleError, ensemble
from kaggle_style.ensemble.schema import VERSION, read_report
from kaggle_style.ensemble.steps import STEPS
from kaggle_style.errors import UserError
from kaggle_style.prediction_files import probs_of, read_predictions, write_predictions
from kaggle_style.task import CONSERVISION_CLASSES as CLASSES

# ----------------------------------------------------------------------------- config, runs


@pytest.mark.parametrize(
    "key, value",
    [
        ("site_strengths", [-1.0]),
        ("site_strengths", []),
        ("sequence_gaps", [0.0]),
        ("sequence_weights", [1.5]),
        ("time_c", 0.0),
        ("stacking_c", float("nan")),
        ("time_harmonics", 4),
        ("n_starts", 0),
        ("seed", -1),
        ("sequences", "sometimes"),
        ("space", "geometric"),
        ("stacking", "maybe"),
    ],
)
def test_config_values_are_checked_before_any_work(key: str, value):
    with pytest.raises(ConfigError, match=key):
        resolve_config(EnsembleConfig, overrides={key: value})


def test_yaml_off_and_on_are_modes():
    cfg = resolve_config(EnsembleConfig, overrides=["site_adapt=off", "sequences=on"])
    assert (cfg.site_adapt, cfg.sequences, cfg.time_adjust) == ("off", "on", "auto")


def _fold_marks(run: Path, hashes: tuple[str, ...]) -> None:
    for fold, key in enumerate(hashes):
        folder = run / f"fold{fold}"
        folder.mkdir()
        (folder / OOF_FILE).write_text("written by the trainer\n")
        (folder / "done.json").write_text(json.dumps({"model_hash": key}))


def test_a_run_whose_folds_mix_configs_is_refused(synthetic: dict):
    _fold_marks(synthetic["runs"]["noisy"], ("aaa", "bbb"))
    with pytest.raises(UserError, match="noisy: its folds were trained under 2 different"):
        ensemble(synthetic_config(synthetic, ["good", "noisy"], "mixed"))


def test_a_run_whose_combined_files_predate_a_fold_is_refused(synthetic: dict):
    run = synthetic["runs"]["noisy"]
    _fold_marks(run, ("aaa", "aaa"))
    old = (run / "fold1" / "done.json").stat().st_mtime - 60
    for name in (OOF_FILE, TEST_FILE):
        os.utime(run / name, (old, old))
    with pytest.raises(UserError, match=f"noisy: {OOF_FILE} is older than"):
        ensemble(synthetic_config(synthetic, ["good", "noisy"], "stale"))
    os.utime(run / OOF_FILE), os.utime(run / TEST_FILE)  # combined again: accepted
    assert ensemble(synthetic_config(synthetic, ["good", "noisy"], "fresh")).report.n_oof == 600


# ----------------------------------------------------------------------------- ensemble.json


def test_ensemble_json_round_trips_through_its_schema(world_files):
    """Written with a version; read back into the same fit; each step's record under its key."""
    _, runs, root = world_files
    result = ensemble(world_config(root, runs, space="logprob", stacking=False))
    raw = json.loads((root / "ens" / ENSEMBLE_FILE).read_text())
    assert raw["version"] == VERSION
    assert {step.key for step in STEPS} <= set(raw)
    again = read_report(root / "ens" / ENSEMBLE_FILE)
    assert again.to_dict() == {**result.report.to_dict(), "git_commit": raw["git_commit"]}


def test_an_older_ensemble_json_is_read_or_refused_in_one_line(world_files):
    _, runs, root = world_files
    ensemble(world_config(root, runs, space="logprob", stacking=False))
    path = root / "ens" / ENSEMBLE_FILE
    old = json.loads(path.read_text())
    del old["version"]
    path.write_text(json.dumps(old))
    assert read_report(path).version == 1  # the layout older code wrote: readable
    del old["weights"]
    path.write_text(json.dumps(old))
    with pytest.raises(
        EnsembleError,
        match=r"an older version's file \(weights: Field required"
        r"\); rerun `kaggle-style ensemble`",
    ) as err:
        read_report(path)
    assert len(str(err.value).splitlines()) == 1
    path.write_text(json.dumps({**old, "version": VERSION + 1}))
    with pytest.raises(EnsembleError, match="newer than this code reads"):
        read_report(path)
    path.write_text("{not json")
    with pytest.raises(EnsembleError, match="unreadable"):
        read_report(path)


@pytest.mark.parametrize("step", STEPS, ids=lambda s: s.key)
def test_every_step_is_switched_by_a_config_key_that_exists(step):
    """The key a message tells the user to set is a real EnsembleConfig key taking the modes."""
    assert step.config_key in {f.name for f in dataclasses.fields(EnsembleConfig)}
    for mode in ("off", "auto", "on"):
        cfg = resolve_config(EnsembleConfig, overrides=[f"{step.config_key}={mode}"])
        assert step.mode(cfg) == mode


def test_a_step_that_is_on_without_its_input_names_its_config_key(world_files):
    """The message names the key a user sets (time_adjust), not the report's key (time)."""
    _, runs, root = world_files
    (root / META_FILE).unlink()
    with pytest.raises(EnsembleError, match=r"^time_adjust is on but .* set time_adjust: auto$"):
        ensemble(world_config(root, runs, sequences="off", time_adjust="on"))


# ----------------------------------------------------------------------------- integrity


def _model_run(run: Path, key: str) -> None:
    """Make a synthetic run folder look trained under config `key` (folds with whole model
    files, config.yaml)."""
    for fold in range(2):
        folder = run / f"fold{fold}"
        folder.mkdir(exist_ok=True)
        save_file({"w": np.zeros(2, dtype=np.float32)}, str(folder / "model.safetensors"))
        (folder / OOF_FILE).write_text("written by the trainer\n")
        (folder / "done.json").write_text(json.dumps({"model_hash": key}))
    (run / CONFIG_FILE).write_text(f"model_hash: {key}\n")
    os.utime(run / OOF_FILE), os.utime(run / TEST_FILE)


def test_a_member_retrained_after_the_ensemble_is_refused_by_every_reader(
    synthetic: dict, tmp_path: Path, capsys: pytest.CaptureFixture
):
    for name in ("good", "noisy"):
        _model_run(synthetic["runs"][name], "aaa")
    result = ensemble(synthetic_config(synthetic, ["good", "noisy"], "ens"))
    ens = synthetic["root"] / "runs" / "ens"
    assert {n: m.model_hash for n, m in result.report.members.items()} == {
        "good": "aaa",
        "noisy": "aaa",
    }
    assert read_ensemble(ens)[0].weights == result.report.weights  # unchanged: accepted
    _model_run(synthetic["runs"]["noisy"], "bbb")  # retrained under another config
    tmp_path = tmp_path.parent / f"{tmp_path.name}_out"  # outputs never inside the data folder
    images = tmp_path / "images"
    images.mkdir(parents=True)
    Image.new("RGB", (32, 24)).save(images / "a.jpg")
    fmt = tmp_path / "format.csv"
    fmt.write_text("id," + ",".join(CLASSES) + "\n")
    for argv in (
        [
            "predict",
            "--images",
            str(images),
            "--run",
            str(ens),
            "--out",
            str(tmp_path / "p.csv"),
            "--quiet",
        ],
        [
            "submit",
            "--predictions",
            str(ens / TEST_FILE),
            "--format",
            str(fmt),
            "--out",
            str(tmp_path / "s.csv"),
        ],
        ["report", str(ens), "--data", str(synthetic["root"]), "--out", str(tmp_path / "report")],
    ):
        assert main(argv) == 2, argv[0]
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, err
        assert "member 'noisy'" in err[0] and "retrained under config bbb" in err[0]
        assert "blended aaa" in err[0] and "rerun `kaggle-style ensemble`" in err[0]
    assert not (tmp_path / "p.csv").exists() and not (tmp_path / "s.csv").exists()


def test_an_interrupted_ensemble_leaves_the_old_folder_whole(
    synthetic: dict, monkeypatch: pytest.MonkeyPatch
):
    """A failure after oof.csv and test.csv are written, before ensemble.json: the folder
    readers see is the old one, every file as it was, and nothing half-written beside it."""
    ensemble(synthetic_config(synthetic, ["good", "noisy"], "ens"))
    out = synthetic["root"] / "runs" / "ens"
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert set(before) == {OOF_FILE, TEST_FILE, METRICS_FILE, ENSEMBLE_FILE, CONFIG_FILE}

    def disk_full(*_args, **_kw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(run_module, "write_report", disk_full)
    with pytest.raises(UserError, match="disk full while writing ens/"):
        ensemble(synthetic_config(synthetic, ["good", "over"], "ens"))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in out.parent.iterdir() if p.name.startswith(".")) == []
    monkeypatch.undo()
    ensemble(synthetic_config(synthetic, ["good", "over"], "ens"))  # replaces it whole
    after = json.loads((out / ENSEMBLE_FILE).read_text())
    assert set(after["weights"]) == {"good", "over"}
    assert read_predictions(out / OOF_FILE).shape == (600, K + 2)
    assert sorted(p.name for p in out.parent.iterdir() if p.name.startswith(".")) == []


def test_an_output_folder_that_is_not_an_ensembles_is_refused_before_any_work(synthetic: dict):
    out = synthetic["root"] / "runs" / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(EnsembleError, match=r"holds files but no ensemble\.json"):
        ensemble(synthetic_config(synthetic, ["good"], "mine"))
    assert (out / "notes.txt").read_text() == "keep me"


# ----------------------------------------------------------------------------- detections


def test_detection_aware_stacking_weights_members_per_image(tmp_path: Path):
    """A crop-like member, confidently wrong where the detector found no box: the step learns
    to trust it less there, wins its nested gate, and `Blend` rebuilt from ensemble.json gives
    the ensemble's own test predictions from the detections file."""
    world = make_world(seed=0, crop_model=True)
    runs = write_world(world, tmp_path)
    detections = tmp_path / "detections.json"
    result = ensemble(
        world_config(
            tmp_path,
            runs,
            space="logprob",
            stacking=False,
            sequences="off",
            time_adjust="off",
            site_adapt="off",
            detections=str(detections),
        )
    )
    step = result.report.to_dict()["detections"]
    assert step["mode"] == "auto" and step["applied"]
    assert step["nested"]["after"] < step["nested"]["before"] - 0.01
    gate = Blend.from_report(read_report(tmp_path / "ens" / ENSEMBLE_FILE)).params("detections")
    no_box = gate.design(RowFacts(boxes=np.array([np.zeros((0, 2))], dtype=object))) @ gate.coef.T
    sure = gate.design(RowFacts(boxes=np.array([np.array([[0.95, 0.2]])], dtype=object)))
    assert (sure @ gate.coef.T)[0, 0] > no_box[0, 0]  # the crop member trusted more with a box
    blend = Blend.from_report(read_report(tmp_path / "ens" / ENSEMBLE_FILE))
    members = [probs_of(read_predictions(Path(r) / TEST_FILE)) for r in runs]
    boxes = boxes_for(detections, [f"x/{i}.jpg" for i in world.test.ids])
    np.testing.assert_allclose(
        blend.apply(members, new_rows(None, boxes=boxes)), result.test, rtol=0, atol=1e-12
    )
    assert [s.key for s in blend.missing(RowFacts())] == ["detections"]


def test_detection_stacking_on_without_detections_names_its_key(world_files):
    _, runs, root = world_files
    with pytest.raises(
        EnsembleError,
        match=r"^detection_stacking is on but there is no "
        r"detections file \(give --detections\)",
    ):
        ensemble(world_config(root, runs, detection_stacking="on"))


@pytest.mark.slow
def test_predict_applies_detection_stacking_to_real_frames(
    tiny_data: Path,
    tiny_folds: Path,
    shared_data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
):
    """The 9 real Taï frames through an ensemble of a full-frame and a crop-trained member that
    uses the detection step: their boxes come from the bundled detector, and the step moves the
    prediction (an ensemble.json without it gives other probabilities)."""
    from kaggle_style.training.config import TrainConfig
    from kaggle_style.training.run import run_training

    repo = Path(__file__).resolve().parents[1]
    cfg = resolve_config(
        TrainConfig,
        repo / "configs" / "tiny-cpu.yaml",
        {
            "name": "full",
            "data": str(tiny_data),
            "folds_file": str(tiny_folds),
            "runs_dir": str(tmp_path / "runs"),
            "cache_dir": str(tmp_path / "cache"),
            "progress": False,
        },
    )
    run_training(cfg)
    full, crop = cfg.run_dir, tmp_path / "runs" / "crop"
    shutil.copytree(full, crop)
    (crop / CONFIG_FILE).write_text(
        (crop / CONFIG_FILE).read_text().replace("view: full", "view: crop")
    )
    for name in (OOF_FILE, TEST_FILE):  # the crop member's own predictions differ from full's
        frame = read_predictions(crop / name)
        sharp = probs_of(frame) ** 3
        frame[list(CLASSES)] = sharp / sharp.sum(axis=1, keepdims=True)
        write_predictions(crop / name, frame)
    ens = tmp_path / "runs" / "ens"
    result = ensemble(
        EnsembleConfig(
            runs=[str(full), str(crop)],
            data=str(tiny_data),
            out=str(ens),
            detections=str(tiny_data / "detections.json"),
            detection_stacking="on",
            n_starts=1,
        )
    )
    assert result.report.to_dict()["detections"]["applied"]
    weights = shared_data / "models" / "megadetector_lite" / "yolox_tiny_640_20220528.pth"
    images, out = shared_data / "tai_images", tmp_path / "tai" / "tai.csv"
    work = tmp_path / "work"
    assert (
        main(
            [
                "predict",
                "--images",
                str(images),
                "--run",
                str(ens),
                "--out",
                str(out),
                "--weights",
                str(weights),
                "--work",
                str(work),
                "--quiet",
            ]
        )
        == 0
    )
    assert "detection-aware stacking" not in capsys.readouterr().err  # not skipped
    frame = pd.read_csv(out)
    assert len(frame) == 9
    np.testing.assert_allclose(frame[list(CLASSES)].sum(axis=1), 1.0, atol=1e-6)
    found = read_detections(work / "detections.json").images
    assert sorted(found) == sorted(frame["file"])  # every frame's own detections
    raw = json.loads((ens / ENSEMBLE_FILE).read_text())
    raw["detections"]["applied"] = False
    (ens / ENSEMBLE_FILE).write_text(json.dumps(raw))
    without = tmp_path / "tai" / "without.csv"
    assert (
        main(
            [
                "predict",
                "--images",
                str(images),
                "--run",
                str(ens),
                "--out",
                str(without),
                "--weights",
                str(weights),
                "--work",
                str(tmp_path / "work2"),
                "--quiet",
            ]
        )
        == 0
    )
    moved = np.abs(
        pd.read_csv(without)[list(CLASSES)].to_numpy() - frame[list(CLASSES)].to_numpy()
    ).max()
    assert moved > 1e-4
