"""Human faces: YuNet (ml/yunet.py) by default, OpenCV's Haar cascade as the fallback.

The Haar cascade ships inside the OpenCV wheel, so a worker always has a face detector; it runs on
a copy at most 640 px on the long side.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Callable, Protocol

import cv2
import cv2.data  # the Haar cascades bundled in the wheel (opencv's stubs leave the submodule out)
import numpy as np

from ml.yunet import FaceModelUnavailable, YuNetDetector, resolve_model

CASCADE = "haarcascade_frontalface_alt.xml"
DECODE_MAX_SIDE = 640  # the largest copy any detector looks at: images are decoded no larger for it
log = logging.getLogger(__name__)


class FaceDetector(Protocol):
    name: str

    def detect(self, rgb: np.ndarray, full_size: tuple[int, int] | None = None) -> list[dict[str, int]]: ...


class HaarDetector:
    """Thread-safe: each thread gets its own CascadeClassifier (OpenCV's is not shared-safe)."""

    name = "haar"

    def __init__(self, cascade_path: str | None = None, max_side: int = DECODE_MAX_SIDE) -> None:
        self.cascade_path = cascade_path or str(Path(cv2.data.haarcascades) / CASCADE)
        if not Path(self.cascade_path).is_file():
            raise FileNotFoundError(f"{self.cascade_path} is missing; reinstall opencv-python-headless>=4.10,<5")
        self.max_side = max_side
        self._local = threading.local()

    def _cascade(self) -> cv2.CascadeClassifier:
        cascade = getattr(self._local, "cascade", None)
        if cascade is None:
            cascade = self._local.cascade = cv2.CascadeClassifier(self.cascade_path)
        return cascade

    def detect(self, rgb: np.ndarray, full_size: tuple[int, int] | None = None) -> list[dict[str, int]]:
        """Face boxes in pixels of `full_size` (width, height), default the image's own size."""
        height, width = rgb.shape[:2]
        scale = min(1.0, self.max_side / max(height, width))
        small = rgb if scale == 1.0 else cv2.resize(rgb, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
        gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        # Faces under a tenth of the short side are noise here; skipping them keeps the same faces
        # on the team's photos (51/54 humans), fewer false ones, and ~40% less time.
        side = max(20, min(gray.shape) // 10)
        boxes = self._cascade().detectMultiScale(gray, minSize=(side, side))
        out_w, out_h = full_size or (width, height)
        fx, fy = out_w / small.shape[1], out_h / small.shape[0]
        return [
            {"x": round(x * fx), "y": round(y * fy), "w": round(w * fx), "h": round(h * fy)}
            for (x, y, w, h) in (boxes if len(boxes) else [])
        ]


def load_face_detector(kind: str, model_path: str | None, model_dir: Path,
                       download: Callable[[str, Path, str], Path] | None) -> FaceDetector:
    """The configured detector; YuNet falls back to Haar, with one clear warning, when its model
    file can be neither found nor downloaded."""
    if kind == "haar":
        return HaarDetector()
    try:
        return YuNetDetector(resolve_model(model_path, model_dir, download))
    except FaceModelUnavailable as exc:
        log.warning("YuNet face detector unavailable, using the Haar cascade instead: %s", exc)
        return HaarDetector()
