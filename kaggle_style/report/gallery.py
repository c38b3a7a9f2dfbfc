"""The most confidently wrong OOF images, as thumbnails (the crop the model saw, if any)."""

from __future__ import annotations

import html
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from kaggle_style.constants import (
    CONFIG_FILE,
    FILEPATH_COL,
    ID_COL,
    LABEL_COL,
)
from kaggle_style.files import atomic_path, read_yaml
from kaggle_style.prediction_files import probs_of
from kaggle_style.report.runs import ReportError, Run, fmt

THUMB_SIZE = (256, 256)


def crop_threshold(runs: list[Run]) -> float | None:
    """The crop threshold a crop-view run trained at: the given runs' configs, then the
    ensemble members' configs; None when no run used crops."""
    configs = [r.config for r in runs]
    for run in runs:
        for member in ((run.ensemble or {}).get("runs") or {}).values():
            path = Path(member) / CONFIG_FILE
            if path.is_file():
                configs.append(read_yaml(path, ReportError) or {})
    for cfg in configs:
        if "crop" in str(cfg.get("view", "")) and cfg.get("crop_threshold") is not None:
            return float(cfg["crop_threshold"])
    return None


def image_sources(
    ids: list[str],
    truth: pd.DataFrame,
    data_root: Path,
    manifest: Path | None,
    threshold: float | None,
) -> dict[str, Path]:
    """id -> the picture to show: the crop at `threshold`, else the best crop, else the frame."""
    frames = truth.set_index(ID_COL)[FILEPATH_COL]
    out = {i: data_root / frames.loc[i] for i in ids}
    if manifest is None:
        return out
    from kaggle_style.data.crop_manifest import crop_paths, load_manifest

    table = load_manifest(manifest)
    chosen: dict[str, list[Path]] = {}
    if threshold is not None:
        try:
            chosen = crop_paths(table, threshold)
        except ValueError:
            chosen = {}
    best = (
        table[~table["fallback"]]
        .sort_values("conf", ascending=False)
        .drop_duplicates(ID_COL)
        .set_index(ID_COL)["crop_path"]
    )
    for i in ids:
        if chosen.get(i):
            out[i] = chosen[i][0]
        elif i in best.index:
            out[i] = Path(best.loc[i])
    return out


def gallery(
    run: Run,
    truth: pd.DataFrame,
    data_root: Path,
    out: Path,
    n: int,
    manifest: Path | None,
    threshold: float | None,
) -> str:
    """The `n` most confidently wrong OOF images of `run` as thumbnails with their labels."""
    from PIL import Image

    classes = run.classes
    frame = run.oof.merge(truth, on=ID_COL, how="left")
    probs = probs_of(frame, classes)
    pred = probs.argmax(axis=1)
    conf = probs.max(axis=1)
    true_idx = frame[LABEL_COL].map({c: i for i, c in enumerate(classes)}).to_numpy()
    wrong = np.flatnonzero(pred != true_idx)
    wrong = wrong[np.argsort(-conf[wrong], kind="stable")][:n]
    ids = [str(frame[ID_COL].iloc[w]) for w in wrong]
    sources = image_sources(ids, truth, data_root, manifest, threshold)
    cards = []
    for k, (row, image_id) in enumerate(zip(wrong, ids, strict=True)):
        name = f"thumb_{k:03d}.jpg"
        try:
            with Image.open(sources[image_id]) as opened:
                img = opened.convert("RGB")
                img.thumbnail(THUMB_SIZE)
                with atomic_path(out / name) as tmp:
                    img.save(tmp, format="JPEG", quality=85)
        except OSError as err:
            print(f"report: skipping {image_id} in the gallery: {err}", file=sys.stderr)
            continue
        caption = (
            f"{image_id}: true {frame[LABEL_COL].iloc[row]}, predicted "
            f"{classes[pred[row]]} ({fmt(conf[row])})"
        )
        cards.append(
            f'<figure><img src="{name}" alt="{html.escape(image_id)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
    if not cards:
        return "<p>no wrong OOF predictions to show.</p>"
    return '<div class="gallery">' + "".join(cards) + "</div>"
