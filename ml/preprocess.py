"""Resize decoded images to the backbone's input (OpenCV releases the GIL, so threads overlap)."""
from __future__ import annotations

import cv2
import numpy as np


def to_input(rgb: np.ndarray, size: int) -> np.ndarray:
    """size x size x 3 float32 in 0..255; the backbone's own preprocess_input runs on the batch."""
    interpolation = cv2.INTER_AREA if min(rgb.shape[:2]) > size else cv2.INTER_LINEAR
    return cv2.resize(rgb, (size, size), interpolation=interpolation).astype(np.float32)
