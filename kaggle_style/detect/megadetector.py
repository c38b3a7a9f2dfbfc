"""MegaDetector (v5a and later) through the `megadetector` PyPI package, with a local weights
file only: there is no internet on the training machines, and the package would otherwise
try to download its weights.

The package is heavy (ultralytics/yolov5 stack), so it is not a dependency: it is imported
only when this backend is chosen, and a missing package or weights file is reported with what
to install and where to put the file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from kaggle_style.detect.mdjson import Detection

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
    from kaggle_style.detect.run import DetectorError

    problems = []
    if weights is None:
        problems.append(f"no weights file given: {WEIGHTS_HINT}")
    elif not Path(weights).is_file():
        problems.append(f"weights file not found: {weights}; {WEIGHTS_HINT}")
    run_detector = None
    try:
        from megadetector.detection import run_detector
    except ImportError:
        problems.append(f"the megadetector package is not installed: {INSTALL_HINT}")
    if problems:
        raise DetectorError("megadetector backend: " + "; ".join(problems))
    return run_detector


class MegaDetector:
    """One image at a time through the package's own pre- and postprocessing."""

    name = "megadetector"

    def __init__(
        self, weights: Path | None, device: str = "cpu", conf_threshold: float = 0.005
    ) -> None:
        run_detector = _check_ready(weights)
        # The package picks the GPU itself when one is visible; `device` is recorded only.
        self.model = run_detector.load_detector(str(weights))
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
    ) -> list[list[Detection]]:
        out = []
        for array in arrays:
            result = self.model.generate_detections_one_image(
                Image.fromarray(array), image_id="", detection_threshold=self.conf_threshold
            )
            dets = [
                Detection(str(d["category"]), float(d["conf"]), tuple(map(float, d["bbox"])))
                for d in result.get("detections") or []
            ]
            out.append(sorted(dets, key=lambda d: -d.conf))
        return out
