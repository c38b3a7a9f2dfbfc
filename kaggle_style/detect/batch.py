"""Run an animal detector once over every image -> MegaDetector's batch-output JSON.

Detection is the slowest stage before training and its output never changes for a given
detector, so it runs once, batched on the GPU when there is one, checkpoints to
`<out>.partial.json` as it goes (a restart skips what is done), and a finished file is reused
unless --force. Images that cannot be decoded become `failure` entries instead of stopping
the run: one corrupt JPEG must not cost hours of detection.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import sys
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol, cast

import numpy as np
from pydantic import Field

from kaggle_style.config import Count, Whole, config_dict, stage_config
from kaggle_style.constants import SHARED_DATA_ENV
from kaggle_style.data.images import MAX_PIXELS, BadImageError
from kaggle_style.detect import mdjson
from kaggle_style.detect.errors import DetectorError
from kaggle_style.detect.sources import KEY_COL, PATH_COL, image_table, load_rgb
from kaggle_style.files import check_outputs, git_commit, write_yaml

DETECTORS = ("megadetector-lite", "megadetector")
PARTIAL_SUFFIX = ".partial.json"


class Detector(Protocol):
    """What `detect` needs from a backend."""

    name: str
    weights: Path

    @property
    def preprocess(self) -> Any: ...  # picklable image -> array, run in loader workers

    def metadata(self) -> dict[str, Any]: ...

    def predict(
        self, arrays: list[np.ndarray], sizes: list[tuple[int, int]]
    ) -> list[list[mdjson.Detection] | str]: ...  # a str: that image's failure message


DetectorName = Literal["megadetector-lite", "megadetector"]


@stage_config
class DetectConfig:
    """Options of the detect stage (defaults < --config YAML < --set < flags)."""

    data: Path | None = None
    """DrivenData folder: all train + test images, keys = filepath (or --images)"""
    images: Path | None = None
    """any folder of images (recursive), keys = relative paths (or --data)"""
    detector: DetectorName = "megadetector-lite"
    """detector backend"""
    weights: Path | None = None
    """weights file (null: megadetector-lite's default file when it exists)"""
    out: Path = Path("detections/detections.json")
    """output JSON, outside the data folder (which may be read-only)"""
    batch_size: Count = 16
    """images per forward pass (64+ on a GPU)"""
    device: str = "auto"
    """auto | cpu | cuda | cuda:N (auto: cuda when available, else cpu)"""
    num_workers: Whole = 2
    """image-decoding processes (one per spare core on a GPU box)"""
    conf_threshold: Annotated[float, Field(ge=0, lt=1)] = 0.005
    """lowest confidence kept (MegaDetector's own output floor)"""
    nms_threshold: Annotated[float, Field(gt=0, le=1)] = 0.45
    """IoU of non-maximum suppression (zamba's, for megadetector-lite)"""
    checkpoint_every: Count = 500
    """images between partial-result checkpoints"""
    limit: int | None = None
    """stop after this many new images (leaves a partial file)"""
    force: bool = False
    """recompute even if `out` exists"""
    max_pixels: Count = MAX_PIXELS
    """largest image in pixels; larger ones are failures (decompression bombs)"""


def default_weights(detector: str) -> Path | None:
    """The first existing megadetector-lite weights file: ./models/... or under
    $KAGGLE_STYLE_SHARED_DATA/models/... (an installed package has no checkout to look beside)."""
    if detector != "megadetector-lite":
        return None
    from kaggle_style.detect.megadetector_lite import WEIGHTS_NAME

    candidates = [Path("models/megadetector_lite") / WEIGHTS_NAME]
    shared = os.environ.get(SHARED_DATA_ENV, "").strip()
    if shared:
        candidates.append(Path(shared) / "models" / "megadetector_lite" / WEIGHTS_NAME)
    return next((p for p in candidates if p.is_file()), None)


def resolve_device(device: str) -> str:
    """auto -> cuda when torch sees a GPU, else cpu; a GPU asked for but not there is an error."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DetectorError(
            f"device {device!r} asked for, but this torch sees no GPU "
            f"(torch {torch.__version__}); pass --device cpu, or install without "
            "replacing the box's CUDA torch (docs/tutorials/real-competition.md)"
        )
    return device


def build_detector(cfg: DetectConfig) -> Detector:
    """The backend named in the config, loaded with its weights on its device."""
    device = resolve_device(cfg.device)
    if cfg.detector == "megadetector":
        from kaggle_style.detect.megadetector import MegaDetector

        return MegaDetector(cfg.weights, device=device, conf_threshold=cfg.conf_threshold)
    from kaggle_style.detect.megadetector_lite import WEIGHTS_NAME, MegadetectorLite

    weights = cfg.weights or default_weights(cfg.detector)
    if weights is None:
        raise DetectorError(
            f"no weights for megadetector-lite: place {WEIGHTS_NAME} (from the zamba wheel, "
            f"zamba/object_detection/yolox/assets/) at models/megadetector_lite/{WEIGHTS_NAME}, "
            f"pass --weights PATH, or set {SHARED_DATA_ENV} to a folder holding "
            f"models/megadetector_lite/{WEIGHTS_NAME}"
        )
    return MegadetectorLite(
        weights,
        device=device,
        conf_threshold=cfg.conf_threshold,
        nms_threshold=cfg.nms_threshold,
    )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def detector_info(detector: Detector, cfg: DetectConfig) -> dict[str, Any]:
    """What made the boxes: the crop cache key and resume checks both rely on these fields."""
    return {
        "detector": detector.name,
        "detector_weights": detector.weights.name,
        "detector_weights_sha256": sha256_file(detector.weights),
        "detector_metadata": detector.metadata(),
        "git_commit": git_commit(),
    }


def partial_path(out: Path) -> Path:
    """`detections.json` -> `detections.partial.json`, beside it (same filesystem: atomic)."""
    return out.with_name(out.stem + PARTIAL_SUFFIX)


def config_path(out: Path) -> Path:
    return out.with_name(out.stem + ".config.yaml")


def _same_run(a: dict[str, Any], b: dict[str, Any]) -> bool:
    keys = ("detector", "detector_weights_sha256", "detector_metadata")
    return all(a.get(k) == b.get(k) for k in keys)


def _load_partial(path: Path, info: dict[str, Any]) -> mdjson.DetectionFile | None:
    """Earlier partial results, if they came from the same detector, weights and settings."""
    if not path.is_file():
        return None
    try:
        partial = mdjson.read(path)
    except (OSError, ValueError, KeyError) as err:
        print(f"detect: ignoring unreadable {path}: {err}", file=sys.stderr)
        return None
    if not _same_run(partial.info, info):
        print(
            f"detect: {path} came from another detector/weights/settings; starting over",
            file=sys.stderr,
        )
        return None
    return partial


class _ImageSet:
    """Map-style dataset for the DataLoader: decoding and preprocessing in the workers."""

    def __init__(self, items: list[tuple[str, Path]], preprocess: Any, max_pixels: int) -> None:
        self.items = items
        self.preprocess = preprocess
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[str, Any, tuple[int, int], str | None]:
        key, path = self.items[index]
        try:
            image = load_rgb(path, self.max_pixels)
        except BadImageError as err:  # every decoder error, bombs included
            return key, None, (0, 0), f"Failure image access: {err}"
        return key, self.preprocess(image), image.size, None


def _keep_batch(batch: list[Any]) -> list[Any]:
    """No stacking in the loader: failed images carry no array."""
    return batch


def _worker_init(_: int) -> None:
    """Workers only decode; one thread each keeps them from fighting over the cores."""
    import torch

    torch.set_num_threads(1)


def _finished(det: mdjson.DetectionFile, info: dict[str, Any]) -> mdjson.DetectionFile:
    """Sorted by key, so a resumed run writes the same file as an uninterrupted one."""
    now = dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    return mdjson.DetectionFile(
        images=dict(sorted(det.images.items())),
        failures=dict(sorted(det.failures.items())),
        categories=det.categories,
        info={**info, "detection_completion_time": now},
        extra=det.extra,
    )


def _detect_batches(
    loader: Any, detector: Detector, det: mdjson.DetectionFile, part: Path, every: int, total: int
) -> None:
    """Fill `det` batch by batch, checkpointing to `part` every `every` images."""
    from tqdm import tqdm

    since_checkpoint = 0
    desc = f"detect ({detector.name})"
    with tqdm(total=total, desc=desc, unit="img", disable=None) as bar:
        for batch in loader:
            good = [b for b in batch if b[3] is None]
            for key, _, _, why in batch:
                if why is not None:
                    det.failures[key] = why
            results = detector.predict([b[1] for b in good], [b[2] for b in good])
            for (key, *_), dets in zip(good, results, strict=True):
                if isinstance(dets, str):  # the backend's own failure for this image
                    det.failures[key] = dets
                else:
                    det.images[key] = dets
            since_checkpoint += len(batch)
            bar.update(len(batch))
            if since_checkpoint >= every:
                mdjson.write(part, det)
                since_checkpoint = 0


def check_writable(out: Path) -> None:
    """Detections go where the user can write (never assumed to be the data folder): say so
    before hours of detection, not at the first checkpoint."""
    folder = out.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DetectorError(
            f"cannot create {folder} for the detections ({err.strerror}); pass "
            "--out PATH in a writable folder (not the read-only data folder)"
        ) from err
    if not os.access(folder, os.W_OK):
        raise DetectorError(
            f"{folder} is not writable: pass --out PATH in a writable folder "
            "(detections never need to live in the data folder)"
        )


def detect_images(cfg: DetectConfig) -> Path:
    """Detect every image not yet done; return the finished file (or the partial one when
    `limit` stopped the run early). The one library entry point of the detect stage."""
    from torch.utils.data import DataLoader, Dataset

    out = Path(cfg.out)
    if out.is_file() and not cfg.force:
        print(f"detect: {out} exists, reusing it (--force to recompute)", file=sys.stderr)
        return out
    check_outputs({"out": out}, {"data": cfg.data, "images": cfg.images})
    check_writable(out)
    table = image_table(cfg.data, cfg.images)
    items = list(zip(table[KEY_COL], table[PATH_COL], strict=True))
    detector = build_detector(cfg)
    info = detector_info(detector, cfg)
    part = partial_path(out)
    det = (None if cfg.force else _load_partial(part, info)) or mdjson.DetectionFile(
        categories={"1": "animal"}, info=info
    )
    det.info = info
    todo = [(k, p) for k, p in items if k not in det.images and k not in det.failures]
    if len(todo) < len(items):
        print(f"detect: {len(items) - len(todo)} images already done ({part})", file=sys.stderr)
    stopping = cfg.limit is not None and cfg.limit < len(todo)
    if stopping:
        todo = todo[: cfg.limit]
    # map-style (len and getitem): all DataLoader asks of a dataset, without importing torch early
    image_set = cast("Dataset[Any]", _ImageSet(todo, detector.preprocess, cfg.max_pixels))
    loader: DataLoader[Any] = DataLoader(
        image_set,
        batch_size=cfg.batch_size,
        num_workers=cfg.num_workers,
        collate_fn=_keep_batch,
        worker_init_fn=_worker_init if cfg.num_workers > 0 else None,
        prefetch_factor=4 if cfg.num_workers > 0 else None,
        persistent_workers=False,
    )
    try:
        _detect_batches(loader, detector, det, part, cfg.checkpoint_every, len(todo))
    except BaseException:  # Ctrl-C or a crash: keep what is done for the next run
        mdjson.write(part, det)
        raise
    if stopping:
        mdjson.write(part, det)
        print(
            f"detect: stopped after {len(todo)} new images (limit); partial results in "
            f"{part}; run again to finish",
            file=sys.stderr,
        )
        return part
    if det.failures and not det.images:  # a file of failures only would pass for detections
        part.unlink(missing_ok=True)
        key, why = next(iter(det.failures.items()))
        raise DetectorError(
            f"none of the {len(det.failures)} images can be read (e.g. {key}: {why}); "
            f"nothing written to {out}: check the images"
        )
    mdjson.write(out, _finished(det, info))
    resolved = {**config_dict(cfg), "weights": str(detector.weights)}
    write_yaml(config_path(out), {**resolved, "git_commit": info["git_commit"]})
    part.unlink(missing_ok=True)
    n_boxes = sum(1 for dets in det.images.values() if dets)
    print(
        f"detect: {len(det.images)} images ({n_boxes} with a box >= {cfg.conf_threshold}), "
        f"{len(det.failures)} failures -> {out}",
        file=sys.stderr,
    )
    return out
