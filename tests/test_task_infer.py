"""`kaggle-style task infer`: a task file from a data folder of either layout, what it could not
decide said in one line naming the key, and a folder that contradicts itself refused in one line
(exit 2) with nothing written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from kaggle_style.cli import main
from kaggle_style.demo.kaggle_layout import KaggleDemoConfig, generate_kaggle_demo
from kaggle_style.task import read_task

REPO = Path(__file__).resolve().parents[1]
TINY = {"n_train": 24, "n_test": 6, "width": 32, "height": 24, "n_train_groups": 4}


def kaggle_demo(folder: Path, **options: object) -> Path:
    return generate_kaggle_demo(
        KaggleDemoConfig(out=str(folder), n_test_groups=2, **{**TINY, **options})
    )


@pytest.fixture(scope="module")
def boreal_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The boreal demo's layout at a tiny size."""
    return kaggle_demo(tmp_path_factory.mktemp("infer") / "boreal")


def copy_of(data: Path, tmp_path: Path) -> Path:
    target = tmp_path / data.name
    shutil.copytree(data, target)
    return target


def infer(data: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["task", "infer", str(data), "--out", str(out)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_infer_on_the_boreal_demo_writes_its_committed_task_file(
    boreal_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = infer(boreal_data, tmp_path / "boreal.yaml", capsys)
    assert code == 0
    assert read_task(tmp_path / "boreal.yaml") == read_task(REPO / "configs/tasks/boreal.yaml")
    assert "group_column: camera" in out
    assert "set `metric:`" in out  # the one thing the data cannot say


def test_infer_on_a_drivendata_folder_takes_classes_in_the_format_order(
    tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, _ = infer(tiny_data, tmp_path / "cv.yaml", capsys)
    assert code == 0
    task, reference = (
        read_task(tmp_path / "cv.yaml"),
        read_task(REPO / "configs/tasks/conservision.yaml"),
    )
    assert task.classes == reference.classes
    assert (task.tables, task.images, task.labels) == (
        reference.tables,
        reference.images,
        reference.labels,
    )
    assert (task.id_column, task.group_column, task.submission) == (
        "id",
        "site",
        reference.submission,
    )
    assert task.score_metric == "log_loss"


def test_infer_finds_png_patterns_in_sub_folders_and_probability_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = kaggle_demo(tmp_path / "pngs", suffix=".png", submission="probabilities")
    code, _, _ = infer(data, tmp_path / "pngs.yaml", capsys)
    task = read_task(tmp_path / "pngs.yaml")
    assert code == 0
    assert task.images.train_pattern == "train_images/**/{id}.png"
    assert task.images.test_pattern == "test_images/**/{id}.png"
    assert task.submission.kind == "probabilities"
    assert list(task.classes) == list(pd.read_csv(data / "sample_submission.csv").columns[1:])


def test_infer_on_two_classes_names_roc_auc_as_a_metric_to_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = kaggle_demo(tmp_path / "animal", classes="animal", submission="probabilities")
    code, out, _ = infer(data, tmp_path / "animal.yaml", capsys)
    assert code == 0
    assert read_task(tmp_path / "animal.yaml").classes == ("animal", "empty")
    metric_line = next(line for line in out.splitlines() if "set `metric:`" in line)
    assert "roc_auc" in metric_line


def test_infer_without_a_group_column_writes_none_and_says_which_key_to_set(
    boreal_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = copy_of(boreal_data, tmp_path)
    train = pd.read_csv(data / "train.csv", dtype=str)
    train.drop(columns="camera").to_csv(data / "train.csv", index=False)
    code, out, _ = infer(data, tmp_path / "nogroup.yaml", capsys)
    assert code == 0
    assert read_task(tmp_path / "nogroup.yaml").group_column is None
    assert "set `group_column: NAME`" in out


def test_infer_lists_the_other_group_candidates(
    boreal_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = copy_of(boreal_data, tmp_path)
    train = pd.read_csv(data / "train.csv", dtype=str)
    train["location"] = train["camera"].str[-1]
    train.to_csv(data / "train.csv", index=False)
    code, out, _ = infer(data, tmp_path / "two.yaml", capsys)
    assert code == 0
    assert read_task(tmp_path / "two.yaml").group_column == "location"  # `location` ranks first
    assert "also possible: camera" in out


def _refused(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """Exit 2, one line, no task file."""
    out = tmp_path / "refused.yaml"
    code, _, err = infer(data, out, capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()
    return err


def test_labels_naming_a_class_the_format_lacks_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = kaggle_demo(tmp_path / "extra", submission="probabilities")
    train = pd.read_csv(data / "train.csv", dtype=str)
    train.loc[train.index[:2], "label"] = "moose"
    train.to_csv(data / "train.csv", index=False)
    err = _refused(data, tmp_path, capsys)
    assert "'moose'" in err and "submission format does not have" in err


def test_one_hot_labels_with_a_class_the_format_lacks_are_refused(
    tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = copy_of(tiny_data, tmp_path)
    labels = pd.read_csv(data / "train_labels.csv", dtype=str)
    labels["moose"] = "0.0"
    labels.to_csv(data / "train_labels.csv", index=False)
    err = _refused(data, tmp_path, capsys)
    assert "moose" in err and "does not have" in err


def test_a_format_that_fits_neither_submission_kind_is_refused(
    boreal_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = copy_of(boreal_data, tmp_path)
    fmt = pd.read_csv(data / "sample_submission.csv", dtype=str)
    fmt["note"] = "x"  # two text columns: neither one label nor numbers per class
    fmt.to_csv(data / "sample_submission.csv", index=False)
    err = _refused(data, tmp_path, capsys)
    assert "fit neither submission kind" in err


def test_ids_without_an_image_are_counted_and_named(
    boreal_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = copy_of(boreal_data, tmp_path)
    gone = sorted((data / "train_images").rglob("*.jpg"))[:2]
    for path in gone:
        path.unlink()
    err = _refused(data, tmp_path, capsys)
    assert "no image file for 2 of" in err
    assert all(path.stem in err for path in gone)


def test_infer_does_not_replace_a_task_file_without_force(
    boreal_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "boreal.yaml"
    out.write_text("# mine\n")
    code, _, err = infer(boreal_data, out, capsys)
    assert code == 2 and "--force" in err
    assert out.read_text() == "# mine\n"


def test_infer_on_the_real_conservision_tables_gives_its_task_file_but_camera_trap(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real CSVs without their images: every key but the camera-trap part, and one line
    saying the images are not there."""
    code, out, _ = infer(shared_data / "conservision", tmp_path / "conservision.yaml", capsys)
    assert code == 0
    inferred = read_task(tmp_path / "conservision.yaml")
    reference = read_task(REPO / "configs/tasks/conservision.yaml")
    assert inferred.model_copy(update={"camera_trap": None, "metric": None}) == (
        reference.model_copy(update={"camera_trap": None, "metric": None})
    )
    assert inferred.score_metric == reference.score_metric
    assert "images not downloaded yet?" in out


def test_a_format_of_fractions_in_one_column_is_said_to_get_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Kaggle's `id,target` with 0.5 everywhere may want a probability: infer says it writes
    labels instead, rather than silently guessing."""
    data = tmp_path / "binary"
    for split, ids in (("train", ["a1", "a2", "a3", "a4"]), ("test", ["b1", "b2"])):
        (data / f"{split}_images").mkdir(parents=True)
        for image_id in ids:
            (data / f"{split}_images" / f"{image_id}.jpg").write_bytes(b"")
    pd.DataFrame({"id": ["a1", "a2", "a3", "a4"], "target": [0, 1, 0, 1]}).to_csv(
        data / "train.csv", index=False
    )
    pd.DataFrame({"id": ["b1", "b2"], "target": [0.5, 0.5]}).to_csv(
        data / "sample_submission.csv", index=False
    )
    code, out, _ = infer(data, tmp_path / "binary.yaml", capsys)
    task = read_task(tmp_path / "binary.yaml")
    assert code == 0
    assert (task.classes, task.submission.kind) == (("0", "1"), "label")
    assert "holds fractions" in out
