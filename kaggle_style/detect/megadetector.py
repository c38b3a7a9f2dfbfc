"""MegaDetector (v5a and later) through the `megadetector` PyPI package, with a local weights
file only: there is no internet on the training machines, and the package would otherwise
try to download its weights.

The package is heavy, so it is not a dependency: it is imported only when this backend is
chosen, and a missing package or weights file is reported with what to install and where to put
the file. `megadetector` 10 is a pure-Python wheel that needs `ultralytics-yolov5` and
`opencv-python` (which clashes with our opencv-python-headless: install it in its own
environment, or on the GPU box); it has `generate_detections_one_batch`, used here, and
`load_detector(path)` never downloads when given a file path.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from kaggle_style.detect.errors import DetectorError
from kaggle_style.detect.mdjson import Detection, box

WEIGHTS_HINT = (
    "download md_v5a.0.0.pt from https://github.com/agentmorris/MegaDetector/releases "
    "(e.g. to models/megadetector/md_v5a.0.0.pt) and pass --weights PATH"
)
INSTALL_HINT = "pip install megadetector"


def as_array(image: Image.Image) -> np.ndarray:
    """MegaDetector resizes internally; workers only decode (uint8 RGB)."""
    return np.asarray(image.convert("RGB"))


def _check_ready(weights: Path | None) -> Any:
    """Import the package's detector loader, or raise one error naming everything missing."""
    problems = []
    if weights is None:
        problems.append(f"no weights file given: {WEIGHTS_HINT}")
    elif not Path(weights).is_file():
        problems.append(f"weights file not found: {weights}; {WEIGHTS_HINT}")
    try:
        from megadetector.detection import run_detector
    except ImportError:
        run_detector = None
        problems.append(f"the megadetector package is not installed: {INSTALL_HINT}")
    if problems:
        raise DetectorError("megadetector backend: " + "; ".join(problems))
    return run_detector


class MegaDetector:
    """MegaDetector through the package's own pre- and postprocessing, a batch at a time where
    the package has `generate_detections_one_batch` (megadetector >= 10), else image by image.

    `load_detector` is given a local file path, never a model name, so it never downloads.
    """

    name = "megadetector"

    def __init__(
        self, weights: Path | None, device: str = "cpu", conf_threshold: float = 0.005
    ) -> None:
        run_detector = _check_ready(weights)
        assert weights is not None  # _check_ready refuses None
        # The package places the model itself: on the GPU when one is visible, unless force_cpu.
        self.model = run_detector.load_detector(str(weights), force_cpu=device == "cpu")
        self.weights = Path(weights)
        self.device = device
        self.conf_threshold = conf_threshold

    @property
    def preprocess(self) -> Callable[[Image.Image], np.ndarray]:
        return as_array

    def metadata(self) -> dict[str, Any]:
        return {"conf_threshold": self.conf_threshold, "typical_detection_threshold": 0.2}

    def predict(
        self, arrays: list[np.ndarray], sizes: list[tuple[int, int]]
    ) -> list[list[Detection] | str]:
        if not arrays:
            return []
        images = [Image.fromarray(a) for a in arrays]
        if hasattr(self.model, "generate_detections_one_batch"):
            results = self.model.generate_detections_one_batch(
                images,
                image_id=[str(i) for i in range(len(images))],
                detection_threshold=self.conf_threshold,
            )
        else:
            results = [
                self.model.generate_detections_one_image(
                    image, image_id="", detection_threshold=self.conf_threshold
                )
                for image in images
            ]
        return [to_detections(result) for result in results]


def to_detections(result: dict[str, Any]) -> list[Detection] | str:
    """One image's result dict from the package -> our detections, best first, or its failure
    message (the package's own image or inference error): a failure entry, not an empty image."""
    if result.get("failure"):
        return str(result["failure"])
    dets = [
        Detection(str(d["category"]), float(d["conf"]), box(d["bbox"]))
        for d in result.get("detections") or []
    ]
    return sorted(dets, key=lambda d: -d.conf)
