"""`kaggle-style predict`: class probabilities for any folder of images, from a trained run.

For an ecologist's new deployment: no competition files, just a folder of images (optionally
one sub-folder per camera site) and a model run (its fold models are averaged) or an ensemble
run (its member runs blended with the ensemble's weights, space and temperature, then per-site
prior adaptation when the ensemble applied it and the sites are known).

Each member reads its own config.yaml back into `TrainConfig` and goes through training's own
sample builder, cache and evaluation loader, so predict cannot drift from training.

Crops: the detector runs once in a work folder (also for outputs that carry boxes); a member
trained on detector crops gets the `crop` stage's crops. When no detector weights are available
(or with --no-detector) such a member FALLS BACK TO FULL FRAMES with a printed warning, since a
slightly worse prediction is more useful to a field user than none.

Unreadable images never stop the run: they are left out, named in a warning and listed in
`bad_images.csv` beside the output (inside it for folder formats).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from kaggle_style.constants import (
    CONFIG_FILE,
    ENSEMBLE_FILE,
    FILEPATH_COL,
    ID_COL,
    SITE_COL,
)
from kaggle_style.errors import UserError, check_name
from kaggle_style.files import read_yaml, write_csv
from kaggle_style.outputs.classified import FILE_COL, IMAGE_COLUMNS, Classified
from kaggle_style.run_contract import run_classes, shared_classes
from kaggle_style.task import Task
from kaggle_style.training.config import TrainConfig

if TYPE_CHECKING:
    from kaggle_style.detect.batch import DetectorName
    from kaggle_style.ensemble.schema import EnsembleReport
    from kaggle_style.training.data import Samples

BAD_IMAGES = "bad_images.csv"


class PredictError(UserError):
    """A run or an image folder that cannot give predictions as asked."""


@dataclass
class DetectorChoice:
    """How crops are made for members that were trained on crops."""

    detector: DetectorName = "megadetector-lite"
    weights: Path | None = None
    enabled: bool = True


def list_images(images: Path, site_from_folder: bool) -> pd.DataFrame:
    """`file, path[, site]`: every image below `images` (recursive), file = relative path."""
    from kaggle_style.detect.sources import PATH_COL, SourceError, image_table

    try:
        table = image_table(images=images)
    except SourceError as err:
        raise PredictError(str(err)) from err
    frame = pd.DataFrame({FILE_COL: table[ID_COL].astype(str), "path": table[PATH_COL].map(str)})
    if site_from_folder:
        # the top-level folder is the camera site; a file directly in `images` has none
        frame[SITE_COL] = [f.split("/")[0] if "/" in f else "" for f in frame[FILE_COL]]
        for site in frame[SITE_COL].unique():
            if site:  # a folder's name is the site's name in every output
                check_name(site, f"site folder in {images}")
    return frame


def member_runs(run_dir: Path) -> tuple[list[Path], EnsembleReport | None]:
    """(model run folders, the ensemble's report or None for a single model run)."""
    from kaggle_style.ensemble.inputs import member_folders
    from kaggle_style.run_contract import check_run

    if not (run_dir / ENSEMBLE_FILE).is_file():
        check_run(run_dir, models=True)
        return [run_dir], None
    return member_folders(run_dir)


# written beside the config, not in it (folds_sha256: training.pseudo_labels.FOLDS_HASH_KEY)
RUN_KEYS = ("git_commit", "model_hash", "data_config", "folds_sha256", "classes")


def run_config(run_dir: Path, **changes: Any) -> tuple[TrainConfig, dict[str, Any]]:
    """(the run's TrainConfig, read back as training resolved it, with `changes`; the data
    config its models were trained with)."""
    from kaggle_style.config import resolve_config

    path = run_dir / CONFIG_FILE
    raw = read_yaml(path, PredictError) or {}
    data_cfg = raw.get("data_config")
    if not isinstance(data_cfg, dict):
        raise PredictError(
            f"{path}: no data_config (written by `kaggle-style train`); retrain "
            "the run with this version"
        )
    values = {k: v for k, v in raw.items() if k not in RUN_KEYS}
    try:
        return resolve_config(TrainConfig, overrides={**values, **changes}), data_cfg
    except UserError as err:
        raise PredictError(f"{path}: {err}; retrain the run with this version") from err


def detect_once(images: Path, work: Path, detector: DetectorChoice) -> Path | None:
    """The detector's file for every image (run once, reused by every member and output);
    None, with a warning, when no detector can run."""
    from kaggle_style.detect.batch import (
        DetectConfig,
        DetectorError,
        default_weights,
        detect_images,
    )

    weights = detector.weights or default_weights(detector.detector)
    if not detector.enabled or weights is None or not Path(weights).is_file():
        why = "--no-detector" if not detector.enabled else "no detector weights found"
        print(f"predict: WARNING: {why}: no boxes (pass --weights PATH)", file=sys.stderr)
        return None
    try:
        return detect_images(
            DetectConfig(
                images=images,
                detector=detector.detector,
                weights=Path(weights),
                out=work / "detections.json",
                num_workers=0,
            )
        )
    except DetectorError as err:
        raise PredictError(f"detector failed: {err}") from err


def _samples(
    run_dir: Path, table: pd.DataFrame, images: Path, work: Path, detections: Path | None
) -> tuple[TrainConfig, dict[str, Any], Samples]:
    """The run's config and its samples of these images, by training's own `build_samples`."""
    from kaggle_style.detect.crops import CropConfig, run_crops
    from kaggle_style.training.data import build_samples

    cfg, data_cfg = run_config(run_dir)
    if cfg.view != "full" and detections is None:
        print(
            f"predict: WARNING: {cfg.name} was trained on view={cfg.view!r} but there are no "
            "detector boxes: using full frames (expect somewhat worse predictions; pass "
            "--weights PATH)",
            file=sys.stderr,
        )
        cfg, _ = run_config(run_dir, view="full")
    elif cfg.view != "full" and detections is not None:  # (None was handled above)
        manifest = run_crops(
            CropConfig(
                detections=detections,
                images=images,
                thresholds=[cfg.crop_threshold],
                out=work / "crops",
                num_workers=0,
            )
        )
        cfg, _ = run_config(run_dir, crops_manifest=str(manifest))
    frame = pd.DataFrame({ID_COL: table[FILE_COL], FILEPATH_COL: table[FILE_COL]})
    return cfg, data_cfg, build_samples(frame, images, cfg)


def predict_model_run(
    run_dir: Path,
    table: pd.DataFrame,
    images: Path,
    work: Path,
    detections: Path | None,
    progress: bool = True,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """(file + class probabilities averaged over the fold models, {bad file: error}), each
    image decoded, cached and transformed as training's test set is."""
    import torch
    from accelerate import Accelerator
    from tqdm.auto import tqdm

    from kaggle_style.data.images import build_cache, cache_size_for
    from kaggle_style.models import create_model, load_weights
    from kaggle_style.training.data import batch_normalizer, eval_loader, normalize_on_device
    from kaggle_style.training.inference import per_image, predict_probs
    from kaggle_style.training.recipe import accelerator_settings

    fold_files = sorted(run_dir.glob("fold*/model.safetensors"))
    if not fold_files:
        raise PredictError(f"{run_dir}: no fold*/model.safetensors (is the run trained?)")
    cfg, data_cfg, samples = _samples(run_dir, table, images, work, detections)
    size = cache_size_for(int(data_cfg["input_size"][-1]), cfg.cache_scale)
    cache = build_cache(
        samples.paths,
        size,
        work / "cache",
        0,
        progress,
        desc=f"decode {run_dir.name}",
        form=cfg.cache_form,
        max_pixels=cfg.max_pixels,
    )
    ids, rows = samples.ids, np.flatnonzero(cache.ok)
    good = set(ids[rows])
    bad = {
        f: "; ".join(
            cache.errors[i] for i in np.flatnonzero(ids == f).tolist() if i in cache.errors
        )
        for f in dict.fromkeys(ids)
        if f not in good
    }
    use_cuda = torch.cuda.is_available()
    accelerator = Accelerator(**accelerator_settings(use_cuda, cfg.mixed_precision))
    loader = accelerator.prepare(eval_loader(cache.pixels_file, rows, data_cfg, cfg, use_cuda))
    normalize = batch_normalizer(
        data_cfg,
        normalize_on_device(cfg.normalize_on, use_cuda, cfg.augment_on),
        accelerator.device,
    )
    channels_last = cfg.channels_last and use_cuda
    classes = run_classes(run_dir)
    total = np.zeros((len(rows), len(classes)))
    for path in fold_files:
        model = load_weights(
            create_model(cfg.backbone, len(classes), False, image_size=cfg.image_size), path
        )
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        model = accelerator.prepare(model)
        bar = tqdm(
            loader, desc=f"{run_dir.name} {path.parent.name}", disable=not progress, leave=False
        )
        total += predict_probs(
            model,
            bar,
            accelerator,
            cfg.tta_hflip,
            channels_last,
            normalize=normalize,
            num_classes=len(classes),
        )
    frame = per_image(total / len(fold_files), ids[rows], classes)
    frame = frame.rename(columns={ID_COL: FILE_COL})
    return frame, bad


def combine(
    frames: list[pd.DataFrame],
    report: EnsembleReport | None,
    sites: np.ndarray | None,
    meta: pd.DataFrame | None,
    detections: Path | None = None,
    classes: tuple[str, ...] = (),
) -> np.ndarray:
    """Members' probabilities (rows aligned) -> the ensemble's prediction, with every step its
    ensemble.json applied that these rows have the information for."""
    probs = [f[list(classes)].to_numpy(dtype=np.float64) for f in frames]
    if report is None:
        return probs[0]
    from kaggle_style.ensemble.blend import Blend
    from kaggle_style.ensemble.inputs import boxes_for, new_rows

    blend = Blend.from_report(report)
    ids = None if meta is None else meta[ID_COL].to_numpy()
    boxes = None if detections is None else boxes_for(detections, frames[0].index.tolist())
    rows = new_rows(sites, meta, ids, where="the images' info bars", boxes=boxes)
    for step in blend.missing(rows):
        print(
            f"predict: the ensemble applies {step.title}, but these images have no "
            f"{step.needs_text}: skipped",
            file=sys.stderr,
        )
    return blend.apply(probs, rows)


def image_meta(info: pd.DataFrame, sites: np.ndarray | None) -> pd.DataFrame | None:
    """Times, night flags and sequences of the new images: the `meta` stage's info-bar reader,
    then the EXIF capture time where no info bar was read; None, with a warning, where the
    reader cannot run here."""
    from kaggle_style.meta.run import meta_frame
    from kaggle_style.meta.sequences import DEFAULT_GAP_SECONDS
    from kaggle_style.outputs.timestamps import fill_from_exif

    files = info.index.to_numpy()
    site_list = sites if sites is not None else [""] * len(files)
    try:
        meta = meta_frame(files, info["path"].tolist(), site_list)
    except (UserError, OSError) as err:
        print(
            f"predict: WARNING: info bars not read ({err}); no times or sequences", file=sys.stderr
        )
        return None
    return fill_from_exif(meta, info["path"].tolist(), site_list, DEFAULT_GAP_SECONDS)


@dataclass
class Predicted:
    """What predict found: the per-image table (the CSV), the same as the outputs read it, and
    the images left out."""

    table: pd.DataFrame  # file, [site], [datetime, hour, night, sequence, time_source], classes,
    # top_class, top_prob
    classified: Classified
    bad: dict[str, str]  # unreadable file -> why


def predict_images(
    images: Path,
    run_dir: Path,
    site_from_folder: bool = False,
    detector: DetectorChoice | None = None,
    work: Path = Path(".predict_work"),
    progress: bool = True,
    read_meta: bool = True,
    boxes: bool = False,
    require_boxes: bool = False,
    task: Task | None = None,
) -> Predicted:
    """Classify every image below `images` with the run; the detector runs for crop-trained
    members and, with `boxes`, for outputs that carry boxes (`require_boxes`: an error when
    it cannot, before any model runs)."""
    from kaggle_style.ensemble.steps import applied_needs

    detector = detector or DetectorChoice()
    images, work = Path(images), Path(work)
    table = list_images(images, site_from_folder)
    runs, report = member_runs(Path(run_dir))
    classes = shared_classes(Path(run_dir), runs, task)
    crops_needed = any(run_config(m)[0].view != "full" for m in runs)
    ensemble_boxes = report is not None and "boxes" in applied_needs(report)
    detections = (
        detect_once(images, work, detector) if crops_needed or boxes or ensemble_boxes else None
    )
    if detections is None and require_boxes:
        raise PredictError(
            "this output needs the detector's boxes: pass --weights PATH (and not --no-detector)"
        )
    frames, bad = [], {}
    for member in runs:
        frame, member_bad = predict_model_run(member, table, images, work, detections, progress)
        frames.append(frame.set_index(FILE_COL))
        bad.update(member_bad)
    keep = [f for f in table[FILE_COL] if f not in bad and all(f in fr.index for fr in frames)]
    if not keep:
        first = next(iter(bad.items()), ("", "no prediction"))
        raise PredictError(
            f"{images}: none of its {len(table)} image(s) can be read (e.g. {first[0]}: "
            f"{first[1]}); nothing written: give a folder of readable images"
        )
    frames = [fr.loc[keep] for fr in frames]
    info = table.set_index(FILE_COL).loc[keep]
    sites = info[SITE_COL].to_numpy() if site_from_folder else None
    meta = image_meta(info, sites) if read_meta else None
    probs = combine(frames, report, sites, meta, detections, classes)
    result = pd.DataFrame({FILE_COL: keep})
    if sites is not None:
        result[SITE_COL] = sites
    if meta is not None:
        for column in ("datetime", "hour", "night", "sequence", "time_source"):
            result[column] = meta[column].to_numpy()
    result[list(classes)] = probs
    result["top_class"] = np.asarray(classes)[probs.argmax(axis=1)]
    result["top_prob"] = probs.max(axis=1)
    classified = _classified(result, Path(run_dir), images, detections, bad, classes)
    return Predicted(result, classified, bad)


def write_bad_images(bad: dict[str, str], folder: Path) -> None:
    """bad_images.csv in `folder`, and a warning naming the first few."""
    if bad:
        path = folder / BAD_IMAGES
        write_csv(path, pd.DataFrame({FILE_COL: list(bad), "error": list(bad.values())}))
        print(
            f"predict: WARNING: {len(bad)} unreadable image(s) left out "
            f"({', '.join(list(bad)[:5])}); listed in {path}",
            file=sys.stderr,
        )


def run_predict(
    images: Path,
    run_dir: Path,
    out: Path,
    site_from_folder: bool = False,
    detector: DetectorChoice | None = None,
    work: Path | None = None,
    progress: bool = True,
    read_meta: bool = True,
    task: Task | None = None,
) -> pd.DataFrame:
    """Write the CSV `out` (Predicted.table) and, if any, bad_images.csv beside it."""
    out = Path(out)
    work = Path(work) if work else out.parent / f".{out.name}_work"
    found = predict_images(
        images, run_dir, site_from_folder, detector, work, progress, read_meta, task=task
    )
    write_csv(out, found.table)
    write_bad_images(found.bad, out.parent)
    print(f"predict: {len(found.table)} images -> {out}", file=sys.stderr)
    return found.table


def _classified(
    result: pd.DataFrame,
    run_dir: Path,
    images: Path,
    detections: Path | None,
    bad: dict[str, str],
    classes: tuple[str, ...],
) -> Classified:
    """The per-image table as the outputs read it: a site for every image (the folder's name
    where there are none), no time where none was read, every untimed image its own visit."""
    from kaggle_style.detect import mdjson
    from kaggle_style.outputs.from_run import run_commit

    frame = result.copy()
    if SITE_COL not in frame.columns:
        frame[SITE_COL] = ""
    frame[SITE_COL] = frame[SITE_COL].astype(str).replace("", images.resolve().name)
    if "datetime" not in frame.columns:
        frame["datetime"] = ""
        frame["sequence"] = frame[SITE_COL] + "/" + frame[FILE_COL]
    return Classified(
        images=frame[[*IMAGE_COLUMNS, *classes]],
        classifier=Path(run_dir).name,
        commit=run_commit(Path(run_dir)),
        detections=mdjson.read(detections) if detections else None,
        failures=dict(bad),
        classes=classes,
    )
