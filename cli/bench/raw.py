"""The raw model, in this process, on the same images: the ceiling the service is measured against.

Each image is decoded and resized exactly as the worker does it (shared.images.load_rgb with the
face detector's size cap, ml.preprocess.to_input), then run through the same backbone.
TensorFlow and OpenCV load only when a measurement runs.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np

from shared.settings import Settings


@dataclass
class RawFigures:
    batched_images_per_s: float
    single_images_per_s: float
    single_latency_ms: float  # median of one image: decode + resize + a forward pass of one
    faces_ms_per_image: float  # the service's face detector on one image (it runs on the non-dogs only)
    pipeline_images_per_s: float  # batched, with the face detector too: the whole job's models
    device: str
    input_size: int = 0  # the backbone's input side, for the CPU floor's resize


def device_name() -> str:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"GPU: {details.get('device_name', gpus[0].name)} (x{len(gpus)})"
    model = ""
    try:
        with open("/proc/cpuinfo") as info:
            model = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "")
    except OSError:
        pass
    return f"CPU: {model or 'unknown'} ({os.cpu_count()} cores)"


class RawModel:
    def __init__(self, backbone: str, weights: str, model_dir: Path, max_pixels: int = 50_000_000) -> None:
        from ml.backbone import load_backbone

        self.backbone = load_backbone(backbone, weights, model_dir)
        self.max_pixels = max_pixels

    def decode(self, data: bytes) -> np.ndarray:
        from ml.faces import DECODE_MAX_SIDE
        from shared.images import load_rgb

        return load_rgb(data, self.max_pixels, max_side=DECODE_MAX_SIDE)

    def infer(self, images: list[bytes], faces: Any = None) -> None:
        """Decode + resize every image, ONE forward pass, then (given a detector) faces where the
        backbone saw no dog, as the worker does."""
        from ml.pipeline import is_dog
        from ml.preprocess import to_input

        decoded = [self.decode(data) for data in images]
        batch = np.stack([to_input(rgb, self.backbone.input_size) for rgb in decoded])
        probs, _ = self.backbone(self.backbone.preprocess(batch))
        if faces is not None:
            for rgb, row in zip(decoded, probs):
                if not is_dog(row, "mass")[0]:
                    faces.detect(rgb)

    def batched(self, images: list[bytes], batch_size: int, faces: Any = None) -> float:
        """Images per second over all images, in batches of `batch_size` (after a warm-up batch)."""
        self.infer(images[:batch_size], faces)
        start = time.perf_counter()
        for i in range(0, len(images), batch_size):
            self.infer(images[i:i + batch_size], faces)
        return len(images) / (time.perf_counter() - start)

    def single(self, images: list[bytes]) -> tuple[float, float]:
        """(images per second, median ms per image) calling the model on one image at a time."""
        self.infer(images[:1])
        times = []
        for data in images:
            start = time.perf_counter()
            self.infer([data])
            times.append(time.perf_counter() - start)
        return len(times) / sum(times), median(times) * 1000

    @staticmethod
    def faces_ms(detector: Any, decoded: list[np.ndarray]) -> float:
        start = time.perf_counter()
        for rgb in decoded:
            detector.detect(rgb)
        return (time.perf_counter() - start) * 1000 / len(decoded)


def measure(images: list[bytes], backbone: str, weights: str, batch_size: int, settings: Settings,
            faces_kind: str, few: int = 48) -> RawFigures:
    """Backbone batched over every image; one at a time, faces, and the whole pipeline on a few."""
    from ml.faces import load_face_detector
    from shared.files import download

    model = RawModel(backbone, weights, settings.model_dir)
    faces = load_face_detector(faces_kind, settings.face_model, settings.model_dir, download)
    batched = model.batched(images, batch_size)
    subset = images[:max(1, min(few, len(images)))]
    single_rate, single_ms = model.single(subset)
    faces_ms = model.faces_ms(faces, [model.decode(data) for data in subset[:16]])
    pipeline = model.batched(subset, batch_size, faces)
    return RawFigures(batched, single_rate, single_ms, faces_ms, pipeline, device_name(), model.backbone.input_size)
