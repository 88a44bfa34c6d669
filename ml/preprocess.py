"""Resize decoded images to the backbone's input (OpenCV releases the GIL, so threads overlap)."""
from __future__ import annotations

import cv2
import numpy as np


def to_uint8(rgb: np.ndarray, size: int) -> np.ndarray:
    """size x size x 3 uint8: what the worker hands the model, whose graph casts and preprocesses."""
    interpolation = cv2.INTER_AREA if min(rgb.shape[:2]) > size else cv2.INTER_LINEAR
    return np.asarray(cv2.resize(rgb, (size, size), interpolation=interpolation), np.uint8)


def to_input(rgb: np.ndarray, size: int) -> np.ndarray:
    """size x size x 3 float32 in 0..255 (the same pixels as to_uint8), for callers that run the
    backbone's preprocess_input on the batch themselves (training, benchmarks)."""
    return to_uint8(rgb, size).astype(np.float32)
