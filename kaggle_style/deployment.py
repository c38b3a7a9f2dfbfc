"""`kaggle-style predict`: class probabilities for any folder of images, from a trained run.

For an ecologist's new deployment: no competition files, just a folder of images (optionally
one sub-folder per camera site) and a model run (its fold models are averaged) or an ensemble
run (its member runs blended with the ensemble's weights, space and temperature, then per-site
prior adaptation when the ensemble applied it and the sites are known).

Crops: a member trained on detector crops gets crops made by the `detect` and `crop` stages in
a work folder. When no detector weights are available (or with --no-detector) such a member
FALLS BACK TO FULL FRAMES with a printed warning, since a slightly worse prediction is more
useful to a field user than none.

Unreadable images never stop the run: they are left out, named in a warning and listed in
`bad_images.csv` beside the output.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import yaml

from kaggle_style.constants import CLASSES, CONFIG_FILE, ENSEMBLE_FILE, ID_COL, SITE_COL
from kaggle_style.errors import UserError
from kaggle_style.io import write_csv

if TYPE_CHECKING:
    from kaggle_style.ensemble.schema import EnsembleReport

FILE_COL = "file"
BAD_IMAGES = "bad_images.csv"


class PredictError(UserError):
    """A run or an image folder that cannot give predictions as asked."""


@dataclass
class DetectorChoice:
    """How crops are made for members that were trained on crops."""

    detector: str = "megadetector-lite"
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
    return frame


def member_runs(run_dir: Path) -> tuple[list[Path], EnsembleReport | None]:
    """(model run folders, the ensemble's report or None for a single model run)."""
    from kaggle_style.ensemble.members import member_folders
    from kaggle_style.training.integrity import check_run

    if not (run_dir / ENSEMBLE_FILE).is_file():
        check_run(run_dir)
        return [run_dir], None
    return member_folders(run_dir)


def _views(cfg: dict[str, Any], table: pd.DataFrame, images: Path, work: Path,
           detector: DetectorChoice) -> dict[str, list[str]]:
    """file -> image paths to classify (full frame, crops, or both) per the run's `view`."""
    from kaggle_style.training.data import image_views

    full = dict(zip(table[FILE_COL], table["path"], strict=True))
    view = cfg.get("view", "full")
    if view == "full":
        return image_views(full, view, "", 0.0)
    from kaggle_style.detect.batch import DetectConfig, DetectorError, default_weights

    weights = detector.weights or default_weights(detector.detector)
    if not detector.enabled or weights is None or not Path(weights).is_file():
        why = "--no-detector" if not detector.enabled else "no detector weights found"
        print(f"predict: WARNING: {cfg.get('name')} was trained on view={view!r} but {why}: "
              "using full frames (expect somewhat worse predictions; pass --weights PATH)",
              file=sys.stderr)
        return image_views(full, "full", "", 0.0)
    from kaggle_style.detect.batch import detect_images
    from kaggle_style.detect.crops import CropConfig, run_crops

    threshold = float(cfg.get("crop_threshold", 0.1))
    try:
        detections = detect_images(DetectConfig(images=images, detector=detector.detector,
                                             weights=Path(weights),
                                             out=work / "detections.json", num_workers=0))
    except DetectorError as err:
        raise PredictError(f"detector failed: {err}") from err
    manifest = run_crops(CropConfig(detections=detections, images=images,
                                    thresholds=[threshold], out=work / "crops", num_workers=0))
    return image_views(full, view, manifest, threshold)


def predict_model_run(run_dir: Path, table: pd.DataFrame, images: Path, work: Path,
                      detector: DetectorChoice, progress: bool = True
                      ) -> tuple[pd.DataFrame, dict[str, str]]:
    """(file + class probabilities averaged over the fold models, {bad file: error})."""
    import torch
    from accelerate import Accelerator
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    from kaggle_style.data.images import build_cache
    from kaggle_style.data.transforms import eval_transform
    from kaggle_style.models import create_model, load_weights
    from kaggle_style.training.data import CachedImages
    from kaggle_style.training.inference import per_image, predict_probs
    from kaggle_style.training.recipe import accelerator_settings

    cfg = yaml.safe_load((run_dir / CONFIG_FILE).read_text())
    fold_files = sorted(run_dir.glob("fold*/model.safetensors"))
    if not fold_files:
        raise PredictError(f"{run_dir}: no fold*/model.safetensors (is the run trained?)")
    data_cfg = cfg["data_config"]
    size = int(data_cfg["input_size"][-1])
    views = _views(cfg, table, images, work, detector)
    ids = np.asarray([f for f, paths in views.items() for _ in paths], dtype=object)
    paths = [p for plist in views.values() for p in plist]
    cache = build_cache(paths, size, work / "cache", 0, progress, desc=f"decode {run_dir.name}")
    rows = np.flatnonzero(cache.ok)
    good = set(ids[rows])
    bad = {f: "; ".join(cache.errors[i] for i in np.flatnonzero(ids == f) if i in cache.errors)
           for f in views if f not in good}
    dataset = CachedImages(cache.pixels_file, rows, np.zeros(len(rows), dtype=int),
                           eval_transform(data_cfg))
    use_cuda = torch.cuda.is_available()
    accelerator = Accelerator(**accelerator_settings(use_cuda))
    loader = accelerator.prepare(DataLoader(dataset, batch_size=64))
    total = np.zeros((len(rows), len(CLASSES)))
    for path in fold_files:
        model = load_weights(create_model(cfg["backbone"], len(CLASSES), False,
                                          image_size=cfg.get("image_size")), path)
        model = accelerator.prepare(model)
        bar = tqdm(loader, desc=f"{run_dir.name} {path.parent.name}", disable=not progress,
                   leave=False)
        total += predict_probs(model, bar, accelerator, bool(cfg.get("tta_hflip", True)), False)
    frame = per_image(total / len(fold_files), ids[rows]).rename(columns={ID_COL: FILE_COL})
    return frame, bad


def combine(frames: list[pd.DataFrame], report: EnsembleReport | None,
            sites: np.ndarray | None, meta: pd.DataFrame | None,
            detections: Path | None = None) -> np.ndarray:
    """Members' probabilities (rows aligned) -> the ensemble's prediction, with every step its
    ensemble.json applied that these rows have the information for."""
    probs = [f[list(CLASSES)].to_numpy(dtype=np.float64) for f in frames]
    if report is None:
        return probs[0]
    from kaggle_style.ensemble.blend import Blend
    from kaggle_style.ensemble.inputs import boxes_for, new_rows

    blend = Blend.from_report(report)
    ids = None if meta is None else meta[ID_COL].to_numpy()
    boxes = None if detections is None else boxes_for(detections, frames[0].index.tolist())
    rows = new_rows(sites, meta, ids, where="the images' info bars", boxes=boxes)
    for step in blend.missing(rows):
        print(f"predict: the ensemble applies {step.title}, but these images have no "
              f"{step.needs_text}: skipped", file=sys.stderr)
    return blend.apply(probs, rows)


def image_meta(info: pd.DataFrame, sites: np.ndarray | None) -> pd.DataFrame | None:
    """Info-bar times, night flags and sequences of the new images (the `meta` stage's reader);
    None, with a warning, where the reader cannot run here."""
    from kaggle_style.meta.run import meta_frame

    files = info.index.to_numpy()
    try:
        return meta_frame(files, info["path"].tolist(),
                          sites if sites is not None else [""] * len(files))
    except (UserError, OSError) as err:
        print(f"predict: WARNING: info bars not read ({err}); no times or sequences",
              file=sys.stderr)
        return None


def run_predict(images: Path, run_dir: Path, out: Path, site_from_folder: bool = False,
                detector: DetectorChoice | None = None, work: Path | None = None,
                progress: bool = True, read_meta: bool = True) -> pd.DataFrame:
    """Write `out` (file, [site], [datetime, hour, night, sequence], classes, top_class,
    top_prob) and, if any, bad_images.csv."""
    detector = detector or DetectorChoice()
    work = Path(work) if work else out.parent / f".{out.stem}_work"
    table = list_images(Path(images), site_from_folder)
    runs, report = member_runs(Path(run_dir))
    frames, bad = [], {}
    for member in runs:
        frame, member_bad = predict_model_run(member, table, Path(images), work, detector,
                                              progress)
        frames.append(frame.set_index(FILE_COL))
        bad.update(member_bad)
    keep = [f for f in table[FILE_COL] if f not in bad and all(f in fr.index for fr in frames)]
    frames = [fr.loc[keep] for fr in frames]
    info = table.set_index(FILE_COL).loc[keep]
    sites = info[SITE_COL].to_numpy() if site_from_folder else None
    meta = image_meta(info, sites) if read_meta else None
    detections = work / "detections.json"  # the crop members' detector run, if one ran
    probs = combine(frames, report, sites, meta, detections if detections.is_file() else None)
    result = pd.DataFrame({FILE_COL: keep})
    if sites is not None:
        result[SITE_COL] = sites
    if meta is not None:
        for column in ("datetime", "hour", "night", "sequence"):
            result[column] = meta[column].to_numpy()
    result[list(CLASSES)] = probs
    result["top_class"] = np.asarray(CLASSES)[probs.argmax(axis=1)]
    result["top_prob"] = probs.max(axis=1)
    write_csv(out, result)
    bad_path = out.parent / BAD_IMAGES
    if bad:
        write_csv(bad_path, pd.DataFrame({FILE_COL: list(bad), "error": list(bad.values())}))
        print(f"predict: WARNING: {len(bad)} unreadable image(s) left out "
              f"({', '.join(list(bad)[:5])}); listed in {bad_path}", file=sys.stderr)
    print(f"predict: {len(result)} images -> {out}", file=sys.stderr)
    return result
