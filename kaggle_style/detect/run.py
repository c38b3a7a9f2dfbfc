"""`kaggle-style detect`: run an animal detector once over every image -> MegaDetector JSON.

Detection is the slowest stage before training and its output never changes for a given
detector, so it runs once, batched on the GPU when there is one, checkpoints to
`<out>.partial.json` as it goes (a restart skips what is done), and a finished file is reused
unless --force. Images that cannot be decoded become `failure` entries instead of stopping
the run: one corrupt JPEG must not cost hours of detection.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from PIL import Image

from kaggle_style.config import ConfigError, add_config_arguments, config_dict, resolve_config
from kaggle_style.data.tables import TableError
from kaggle_style.detect import mdjson
from kaggle_style.detect.sources import KEY_COL, PATH_COL, SourceError, image_table, load_rgb
from kaggle_style.io import git_commit, write_yaml

DETECTORS = ("megadetector-lite", "megadetector")
PARTIAL_SUFFIX = ".partial.json"


class DetectorError(RuntimeError):
    """A detector that cannot run here: missing package or weights; the message says the fix."""


class Detector(Protocol):
    """What `detect` needs from a backend."""

    name: str
    weights: Path

    @property
    def preprocess(self) -> Any: ...  # picklable image -> array, run in loader workers

    def metadata(self) -> dict[str, Any]: ...

    def predict(
        self, arrays: list[np.ndarray], sizes: list[tuple[int, int]]
    ) -> list[list[mdjson.Detection]]: ...


@dataclass
class DetectConfig:
    """Options of the detect stage (defaults < --config YAML < --set < flags)."""

    data: Path | None = None  # DrivenData folder: all train + test images, keys = filepath
    images: Path | None = None  # or any folder of images (recursive), keys = relative paths
    detector: Literal["megadetector-lite", "megadetector"] = "megadetector-lite"
    weights: Path | None = None  # None: the default file for megadetector-lite when it exists
    out: Path = Path("detections/detections.json")
    batch_size: int = 16
    device: str = "auto"  # auto = cuda when available, else cpu
    num_workers: int = 2  # image-decoding processes
    conf_threshold: float = 0.005  # lowest confidence kept (MegaDetector's own output floor)
    nms_threshold: float = 0.45  # zamba's value for megadetector-lite
    checkpoint_every: int = 500  # images between partial-result checkpoints
    limit: int | None = None  # stop after this many new images (leaves a partial file)
    force: bool = False  # recompute even if `out` exists


def default_weights(detector: str) -> Path | None:
    """The first existing megadetector-lite weights file: ./models/... or ../shared/data/...."""
    if detector != "megadetector-lite":
        return None
    from kaggle_style.detect.megadetector_lite import WEIGHTS_NAME

    project = Path(__file__).resolve().parents[2]
    candidates = (
        Path("models/megadetector_lite") / WEIGHTS_NAME,
        project / "models" / "megadetector_lite" / WEIGHTS_NAME,
        project.parent / "shared" / "data" / "models" / "megadetector_lite" / WEIGHTS_NAME,
    )
    return next((p for p in candidates if p.is_file()), None)


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


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
            f"zamba/object_detection/yolox/assets/) at models/megadetector_lite/{WEIGHTS_NAME} "
            "or pass --weights PATH"
        )
    return MegadetectorLite(
        weights, device=device, conf_threshold=cfg.conf_threshold,
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
        print(f"detect: {path} came from another detector/weights/settings; starting over",
              file=sys.stderr)
        return None
    return partial


class _ImageSet:
    """Map-style dataset for the DataLoader: decoding and preprocessing in the workers."""

    def __init__(self, items: list[tuple[str, Path]], preprocess: Any) -> None:
        self.items = items
        self.preprocess = preprocess

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[str, Any, tuple[int, int], str | None]:
        key, path = self.items[index]
        try:
            image = load_rgb(path)
            return key, self.preprocess(image), image.size, None
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
            return key, None, (0, 0), f"Failure image access: {type(err).__name__}: {err}"


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
                det.images[key] = dets
            since_checkpoint += len(batch)
            bar.update(len(batch))
            if since_checkpoint >= every:
                mdjson.write(part, det)
                since_checkpoint = 0


def run_detect(cfg: DetectConfig) -> Path:
    """Detect every image not yet done; return the finished file (or the partial one when
    `limit` stopped the run early)."""
    from torch.utils.data import DataLoader

    out = Path(cfg.out)
    if out.is_file() and not cfg.force:
        print(f"detect: {out} exists, reusing it (--force to recompute)", file=sys.stderr)
        return out
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
    loader = DataLoader(
        _ImageSet(todo, detector.preprocess),
        batch_size=cfg.batch_size,
        num_workers=cfg.num_workers,
        collate_fn=_keep_batch,
        worker_init_fn=_worker_init if cfg.num_workers > 0 else None,
    )
    try:
        _detect_batches(loader, detector, det, part, cfg.checkpoint_every, len(todo))
    except BaseException:  # Ctrl-C or a crash: keep what is done for the next run
        mdjson.write(part, det)
        raise
    if stopping:
        mdjson.write(part, det)
        print(f"detect: stopped after {len(todo)} new images (limit); partial results in "
              f"{part}; run again to finish", file=sys.stderr)
        return part
    mdjson.write(out, _finished(det, info))
    resolved = {**config_dict(cfg), "weights": str(detector.weights)}
    write_yaml(config_path(out), {**resolved, "git_commit": info["git_commit"]})
    part.unlink(missing_ok=True)
    n_boxes = sum(1 for dets in det.images.values() if dets)
    print(f"detect: {len(det.images)} images ({n_boxes} with a box >= {cfg.conf_threshold}), "
          f"{len(det.failures)} failures -> {out}", file=sys.stderr)
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", type=Path, help="DrivenData folder (train + test images)")
    source.add_argument("--images", type=Path, help="any folder of images (recursive)")
    parser.add_argument("--detector", choices=DETECTORS, help="backend (megadetector-lite)")
    lite = default_weights("megadetector-lite")
    parser.add_argument(
        "--weights", type=Path,
        help=f"weights file (megadetector-lite default: {lite or 'none found'})",
    )
    parser.add_argument("--out", type=Path, help="output JSON (detections/detections.json)")
    parser.add_argument("--batch-size", type=int, help="images per forward pass (16)")
    parser.add_argument("--device", help="auto | cpu | cuda | cuda:N (auto)")
    parser.add_argument("--num-workers", type=int, help="image-decoding processes (2)")
    parser.add_argument("--checkpoint-every", type=int, help="images between checkpoints (500)")
    parser.add_argument("--limit", type=int, help="stop after N new images (resume later)")
    parser.add_argument("--force", action="store_true", default=None, help="recompute")
    add_config_arguments(parser)


def config_from_args(args: argparse.Namespace) -> DetectConfig:
    return resolve_config(
        DetectConfig, args.config, args.overrides,
        data=args.data, images=args.images, detector=args.detector, weights=args.weights,
        out=args.out, batch_size=args.batch_size, device=args.device,
        num_workers=args.num_workers, checkpoint_every=args.checkpoint_every,
        limit=args.limit, force=args.force,
    )


def run(args: argparse.Namespace) -> int:
    try:
        cfg = config_from_args(args)
        run_detect(cfg)
    except (ConfigError, DetectorError, SourceError, TableError) as err:
        print(f"detect: error: {err}", file=sys.stderr)
        return 2
    return 0

