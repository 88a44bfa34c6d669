"""Human faces with OpenCV's YuNet (cv2.FaceDetectorYN), and where its ONNX file comes from."""
from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from shared.errors import FixedCodeError

# The official model, pinned: opencv_zoo stores it through Git LFS, so this `raw` URL redirects to
# the LFS media URL. Size and sha256 are those of the LFS pointer at opencv_zoo HEAD 966be4c
# (committed in f12e127, "update yunet to v2", 2023-06-06).
MODEL_NAME = "face_detection_yunet_2023mar.onnx"
MODEL_URL = (
    "https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/face_detection_yunet_2023mar.onnx"
)
MODEL_SIZE = 232_589
MODEL_SHA256 = "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"

SCORE_THRESHOLD = 0.9
NMS_THRESHOLD = 0.3
# Measured on the team's photos (bench/faces.py): at 320 px YuNet finds faces in 53/54 humans against
# 52/54 at 640, none on others or dogs either way, at half the time on photos larger than 320 px.
# A border around the image (25% or 50% of the short side, constant or replicated) found no more
# faces, not even on the frame-filling lfwgray crops, and cost up to 2-3x the time, so there is none.
YUNET_INPUT_SIDE = 320  # YuNet looks at a copy this size: 53/54 faces against 52/54 at 640, in half the time

FIX_HINT = "set DOGBREED_FACE_MODEL to a YuNet .onnx file, or DOGBREED_FACE_DETECTOR=haar"


class FaceModelUnavailable(FixedCodeError, RuntimeError):
    """The YuNet model file is neither given, nor in the model folder, nor downloadable."""

    code = "face_model_unavailable"


def resolve_model(
    model_path: str | None,
    model_dir: Path,
    download: Callable[[str, Path, str], Path] | None,
    *,
    url: str = MODEL_URL,
    sha256: str = MODEL_SHA256,
) -> Path:
    """The given file, else the official model in `model_dir`, else a download of it there.

    `download(url, target, sha256)` must leave `target` only when its sha256 matches; `url` and
    `sha256` change only in tests (a local server).
    """
    if model_path:
        path = Path(model_path)
        if not path.is_file():
            raise FaceModelUnavailable(
                f"DOGBREED_FACE_MODEL={model_path} is not a file: point it at a YuNet .onnx file "
                f"(for example {MODEL_URL}), or set DOGBREED_FACE_DETECTOR=haar"
            )
        return path
    target = Path(model_dir) / MODEL_NAME
    if target.is_file():
        return target
    if download is None:
        raise FaceModelUnavailable(f"{target} is missing and downloads are off: save {MODEL_URL} there, or {FIX_HINT}")
    try:
        return Path(download(url, target, sha256))
    except Exception as exc:
        raise FaceModelUnavailable(
            f"could not download the YuNet face model from {url} to {target} "
            f"({type(exc).__name__}: {exc}): {FIX_HINT}"
        ) from exc


class YuNetDetector:
    """Thread-safe: each thread gets its own FaceDetectorYN, since setInputSize mutates it."""

    name = "yunet"

    def __init__(
        self,
        model_path: str | Path,
        score_threshold: float = SCORE_THRESHOLD,
        max_side: int = YUNET_INPUT_SIDE,
    ) -> None:
        self.model_path = str(model_path)
        if not Path(self.model_path).is_file():
            raise FaceModelUnavailable(f"{self.model_path} is missing: {FIX_HINT}")
        self.score_threshold = score_threshold
        self.max_side = max_side
        self._local = threading.local()
        self._net()  # fail here, not on the first image, when the file is not a YuNet model

    def _net(self) -> cv2.FaceDetectorYN:
        net = getattr(self._local, "net", None)
        if net is None:
            try:
                net = cv2.FaceDetectorYN.create(
                    self.model_path, "", (320, 320), self.score_threshold, NMS_THRESHOLD, 5000
                )
            except cv2.error as exc:
                raise FaceModelUnavailable(
                    f"{self.model_path} is not a YuNet ONNX model OpenCV can load ({exc.msg.strip()}): {FIX_HINT}"
                ) from None
            self._local.net = net
        return net

    def detect(self, rgb: np.ndarray, full_size: tuple[int, int] | None = None) -> list[dict[str, int]]:
        """Face boxes in pixels of `full_size` (width, height), default the image's own size."""
        height, width = rgb.shape[:2]
        scale = min(1.0, self.max_side / max(height, width))
        small = rgb if scale == 1.0 else cv2.resize(rgb, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
        small_h, small_w = small.shape[:2]
        bgr = cv2.cvtColor(small, cv2.COLOR_RGB2BGR)
        net = self._net()
        net.setInputSize((bgr.shape[1], bgr.shape[0]))
        _, faces = net.detect(bgr)
        out_w, out_h = full_size or (width, height)
        fx, fy = out_w / small_w, out_h / small_h
        boxes = []
        for face in faces if faces is not None else []:
            # YuNet may place a box partly outside the image (a face cut by the edge): clip it.
            x0, y0 = max(0.0, float(face[0])), max(0.0, float(face[1]))
            x1, y1 = min(float(small_w), face[0] + face[2]), min(float(small_h), face[1] + face[3])
            if x1 - x0 < 1 or y1 - y0 < 1:
                continue
            x, y = round(x0 * fx), round(y0 * fy)
            boxes.append({"x": x, "y": y, "w": min(out_w, round(x1 * fx)) - x, "h": min(out_h, round(y1 * fy)) - y})
        return boxes
