"""MegadetectorLite: zamba's 1-class YOLOX-tiny animal detector (640 px), run exactly as zamba
runs it, so its boxes and confidences are the ones zamba's users know.

zamba (`zamba/object_detection/yolox/megadetector_lite_yolox.py`) feeds the network RGB pixels
as float 0..255 (no normalisation), resized with PIL bicubic to fit 640x640 keeping the aspect
ratio and padded with black at the right/bottom (`ImageOps.pad(..., color=None,
centering=(0, 0))`), then keeps boxes with obj*cls >= conf after NMS (yolox's `postprocess`).
On the 21 ENA24 images this finds more animals (20 at conf >= 0.2) than YOLOX's own BGR,
grey-114 letterbox (19), which confirms the detector was tuned for zamba's pipeline.

The model comes from the `pixeltable-yolox` package (import name `yolox`), installed without
its training/export dependencies; see `INSTALL_HINT`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from kaggle_style.detect.errors import DetectorError
from kaggle_style.detect.mdjson import Detection

WEIGHTS_NAME = "yolox_tiny_640_20220528.pth"
KWARGS_SUFFIX = "_model_kwargs.json"
# What zamba's kwargs file says; used when the file is not beside the weights.
DEFAULT_KWARGS = {"num_classes": 1, "backbone": "yolox-tiny", "image_size": 640}
INSTALL_HINT = (
    "pip install --no-deps pixeltable-yolox==0.4.3 && pip install loguru tabulate pycocotools"
)


def kwargs_path(weights: Path) -> Path:
    """zamba keeps `<stem>_model_kwargs.json` beside `<stem>.pth`."""
    return weights.with_name(weights.stem + KWARGS_SUFFIX)


def letterbox(image: Image.Image, size: int) -> np.ndarray:
    """zamba's preprocessing: CHW RGB 0..255, bicubic fit into size x size, black pad at the
    right and bottom (so the box scale is one ratio and no offset). uint8 here, float32 on the
    device: the same values as zamba's float32 cast, a quarter of the bytes between
    processes."""
    padded = ImageOps.pad(
        image.convert("RGB"),
        (size, size),
        method=Image.Resampling.BICUBIC,
        color=None,
        centering=(0, 0),
    )
    return np.ascontiguousarray(np.asarray(padded, dtype=np.uint8).transpose(2, 0, 1))


class MegadetectorLite:
    """Batched YOLOX-tiny inference; `preprocess` runs in data-loader workers, `predict` on
    the device."""

    name = "megadetector-lite"

    def __init__(
        self,
        weights: Path,
        device: str = "cpu",
        conf_threshold: float = 0.005,
        nms_threshold: float = 0.45,
    ) -> None:
        import torch

        weights = Path(weights)
        if not weights.is_file():
            raise DetectorError(
                f"megadetector-lite weights not found: {weights}. Put {WEIGHTS_NAME} there "
                f"(with {Path(WEIGHTS_NAME).stem}{KWARGS_SUFFIX} beside it); both ship in the "
                "zamba wheel under zamba/object_detection/yolox/assets/."
            )
        try:
            from yolox.config import YoloxConfig
            from yolox.utils import load_checkpoint
        except ImportError as err:
            raise DetectorError(
                f"megadetector-lite needs the pixeltable-yolox package ({err}); install it "
                f"without its heavy training dependencies: {INSTALL_HINT}"
            ) from err
        kw_file = kwargs_path(weights)
        kwargs: dict[str, Any] = (
            json.loads(kw_file.read_text()) if kw_file.is_file() else dict(DEFAULT_KWARGS)
        )
        config = YoloxConfig.get_named_config(str(kwargs.get("backbone", "yolox-tiny")))
        if config is None:
            raise DetectorError(f"{kw_file}: unknown backbone {kwargs.get('backbone')!r}")
        self.size = int(kwargs.get("image_size", 640))
        config.num_classes = int(kwargs.get("num_classes", 1))
        config.test_size = (self.size, self.size)
        model = config.get_model()  # sets BatchNorm eps=1e-3 as in training; zamba does the same
        model.load_state_dict(load_checkpoint(weights, map_location="cpu")["model"])
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)
        self.num_classes = config.num_classes
        self.conf_threshold = conf_threshold
        self.nms_threshold = nms_threshold
        self.weights = weights
        self.image_size = self.size

    @property
    def preprocess(self) -> Callable[[Image.Image], np.ndarray]:
        """A picklable function, so data-loader workers can run it."""
        return functools.partial(letterbox, size=self.size)

    def metadata(self) -> dict[str, Any]:
        return {
            "image_size": self.size,
            "conf_threshold": self.conf_threshold,
            "nms_threshold": self.nms_threshold,
            "preprocessing": "zamba: RGB 0-255, bicubic fit, black pad right/bottom",
            "typical_detection_threshold": 0.2,
        }

    def predict(
        self, arrays: list[np.ndarray], sizes: list[tuple[int, int]]
    ) -> list[list[Detection] | str]:
        """Detections per image, boxes normalised to the original (width, height)."""
        import torch
        from yolox.utils.boxes import postprocess

        if not arrays:
            return []
        batch = torch.from_numpy(np.stack(arrays)).to(self.device).float()
        with torch.inference_mode():
            raw = self.model(batch)
            outputs = postprocess(raw, self.num_classes, self.conf_threshold, self.nms_threshold)
        return [
            self._to_detections(out, width, height)
            for out, (width, height) in zip(outputs, sizes, strict=True)
        ]

    def _to_detections(self, output: Any, width: int, height: int) -> list[Detection]:
        if output is None:
            return []
        rows = output.float().cpu().numpy()  # x1, y1, x2, y2, obj, cls_conf, cls
        ratio = min(self.size / width, self.size / height)
        x1 = np.clip(rows[:, 0] / ratio / width, 0.0, 1.0)
        y1 = np.clip(rows[:, 1] / ratio / height, 0.0, 1.0)
        x2 = np.clip(rows[:, 2] / ratio / width, 0.0, 1.0)
        y2 = np.clip(rows[:, 3] / ratio / height, 0.0, 1.0)
        conf = rows[:, 4] * rows[:, 5]
        order = np.argsort(-conf, kind="stable")
        # Class index k is MegaDetector category k+1 (a 1-class model: "1" = animal).
        return [
            Detection(
                str(int(rows[i, 6]) + 1),
                float(conf[i]),
                (float(x1[i]), float(y1[i]), float(x2[i] - x1[i]), float(y2[i] - y1[i])),
            )
            for i in order
            if x2[i] > x1[i] and y2[i] > y1[i]
        ]
