"""The models one worker process serves: loaded once at start, the breed head swapped while it runs.

The maintenance thread reads which version is active and calls `follow()`; loading the new head
happens there too. The inference thread only reads `models`, which is replaced whole, never mutated,
so a batch in flight keeps the head it started with and never waits on the database or a disk.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import replace
from typing import Any

from ml.backbone import ModelUnavailable, batch_sizes, load_backbone
from ml.faces import load_face_detector
from ml.heads import Head, ImageNetDogHead, load_trained_head
from ml.pipeline import Models
from ml.registry import IMAGENET
from shared.files import download
from shared.s3 import open_model_store
from shared.settings import CPU_MAX_BATCH, GPU_MAX_BATCH, Settings

log = logging.getLogger(__name__)
FETCH_RETRY_S = 30.0  # a version that failed to download is tried again after this long, not every second


class ModelHolder:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.models: Models | None = None
        self.error: str | None = None  # why the models could not load; each job reports it
        self.remote = open_model_store(settings)  # S3: versions are fetched into model_dir on first use
        self._fetch_failed: dict[str, float] = {}  # version -> when its download last failed

    def load(self) -> None:
        """Load every model once; remember (not raise) a loading error so jobs can report it."""
        _configure_tensorflow(self.settings.precision)
        try:
            backbone = load_backbone(self.settings.backbone, self.settings.backbone_weights, self.settings.model_dir)
            backbone.jit = self.settings.xla
            backbone.sizes = batch_sizes(resolve_max_batch(self.settings))
            faces = load_face_detector(self.settings.face_detector, self.settings.face_model,
                                       self.settings.model_dir, download)
            self.models = Models(backbone=backbone, head=ImageNetDogHead(), faces=faces,
                                 dog_rule=self.settings.dog_rule)
            backbone.warm()  # every padded size traced (compiled, autotuned) now, none under traffic
        except ModelUnavailable as exc:
            self.error = str(exc)
            log.error("models unavailable, jobs will fail until fixed: %s", exc)

    def current(self) -> Models:
        if self.models is None:
            raise ModelUnavailable(self.error or "models are not loaded")
        return self.models

    def follow(self, version: str | None, backbone: str | None) -> None:
        """Serve the active version (None: the ImageNet dog classes); a head that cannot load is logged
        and the current one kept."""
        models = self.models
        if models is None or version == models.head.version:
            return
        if version is None:
            head: Head = ImageNetDogHead()
        elif backbone != models.backbone.name:
            log.error("model %s was trained on %s but this worker runs %s; keeping %s",
                      version, backbone, models.backbone.name, models.head.name)
            return
        else:
            try:
                folder = self.settings.model_dir / version
                if self.remote is not None and not folder.is_dir():
                    if time.monotonic() - self._fetch_failed.get(version, -FETCH_RETRY_S) < FETCH_RETRY_S:
                        return
                    self._fetch_failed[version] = time.monotonic()
                    folder = self.remote.fetch(version, self.settings.model_dir)  # once; sha256s checked
                    self._fetch_failed.pop(version, None)
                    log.info("fetched model %s into %s", version, folder)
                head = load_trained_head(folder, version, models.backbone.feature_dim)
            except Exception as exc:
                log.error("could not load model %s: %s", version, exc)
                return
        self.models = replace(models, head=head)
        log.info("breed head is now %s", head.name if version else IMAGENET)

    def describe(self) -> dict[str, Any]:
        return self.models.describe() if self.models else {"error": self.error}


def resolve_max_batch(settings: Settings) -> int:
    """DOGBREED_MAX_BATCH, or by what TensorFlow sees: a GPU is kept busy by large batches, a CPU's
    throughput barely grows past 16 while each image waits for the whole batch."""
    if settings.max_batch:
        return settings.max_batch
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return GPU_MAX_BATCH if tf.config.list_physical_devices("GPU") else CPU_MAX_BATCH


def _configure_tensorflow(precision: str) -> None:
    """GPU memory growth, so a pinned worker takes what it uses rather than the whole card;
    mixed precision (DOGBREED_PRECISION) for models built here (saved files keep their own dtypes)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    keras.mixed_precision.set_global_policy(precision)
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:
            pass
