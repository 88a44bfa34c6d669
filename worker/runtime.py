"""What one worker process holds: models loaded once, the batcher, the database and image store.

Loaded when the worker starts (Celery's worker_init; the threads pool never forks, so TensorFlow
stays in one process). When the backbone cannot load, the worker still runs and each job fails
with the loader's message, which names the setting to fix.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from shared import jobs, model_versions
from shared.db import make_engine, make_sessionmaker, session_scope
from shared.settings import Settings
from shared.storage import ImageStore
from worker.batcher import Batcher, Ticket
from worker.faces import FaceDetector
from worker.models.backbone import ModelUnavailable, load_backbone
from worker.models.heads import ImageNetDogHead, load_trained_head
from worker.pipeline import Models, Outputs, Result, forward, interpret
from worker.preprocess import to_input

log = logging.getLogger(__name__)
HEAD_CHECK_INTERVAL_S = 1.0


@dataclass
class ActiveVersion:
    name: str | None
    backbone: str | None


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_engine(settings.database_url)
        self.sessions = make_sessionmaker(self.engine)
        self.store = ImageStore(settings.storage_dir)
        self.models: Models | None = None
        self.error: str | None = None
        self.batcher: Batcher | None = None
        self.writer: Batcher | None = None
        self._head_checked = 0.0
        self._lock = threading.Lock()

    # ---- start-up -------------------------------------------------------------------------
    def setup(self) -> None:
        """Load every model once; remember (not raise) a loading error so jobs can report it."""
        _configure_tensorflow(self.settings.precision)
        try:
            backbone = load_backbone(self.settings.backbone, self.settings.backbone_weights)
            backbone.jit = self.settings.xla
            self.models = Models(backbone=backbone, head=ImageNetDogHead(), faces=FaceDetector(),
                                 dog_rule=self.settings.dog_rule)
            self._refresh_head(force=True)
            self._warm_up()
        except ModelUnavailable as exc:
            self.error = str(exc)
            log.error("models unavailable, jobs will fail until fixed: %s", exc)
        self.batcher = Batcher(self._run_batch, self.settings.max_batch, self.settings.max_batch_delay_ms / 1000)
        # No wait for the writer: under load, results pile up while a write runs and go in together.
        self.writer = Batcher(self._write_batch, self.settings.max_batch, 0.0, name="result-writer")

    def _warm_up(self) -> None:
        size = self.models.backbone.input_size
        forward(np.zeros((1, size, size, 3), np.float32), self.models)

    # ---- the breed head follows the active model version -----------------------------------
    def active_version(self) -> ActiveVersion:
        with session_scope(self.sessions) as session:
            row = model_versions.active_version(session)
            return ActiveVersion(row.name, row.backbone) if row else ActiveVersion(None, None)

    def _refresh_head(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._head_checked < HEAD_CHECK_INTERVAL_S:
            return
        self._head_checked = now
        try:
            active = self.active_version()
        except Exception as exc:  # a database blip must not stop inference
            log.warning("could not read the active model version: %s", exc)
            return
        if active.name == self.models.head.version:
            return
        if active.name is None:
            head = ImageNetDogHead()
        elif active.backbone != self.models.backbone.name:
            log.error("model %s was trained on %s but this worker runs %s; keeping %s",
                      active.name, active.backbone, self.models.backbone.name, self.models.head.name)
            return
        else:
            try:
                head = load_trained_head(self.settings.model_dir / active.name, active.name,
                                                     self.models.backbone.feature_dim)
            except Exception as exc:
                log.error("could not load model %s: %s", active.name, exc)
                return
        # A new Models object, never a mutation: a batch in flight keeps the head it ran with.
        self.models = replace(self.models, head=head)
        log.info("breed head is now %s", head.name)

    # ---- inference ------------------------------------------------------------------------
    def _run_batch(self, inputs: list[np.ndarray]) -> list[tuple[Outputs, Models, int]]:
        with self._lock:
            self._refresh_head()
            models = self.models
            outputs = forward(np.stack(inputs), models)
        return [(out, models, len(inputs)) for out in outputs]

    def expect(self) -> Ticket | None:
        """Tell the batcher an image is on its way (see Batcher.expect)."""
        return self.batcher.expect() if self.batcher else None

    def classify(self, rgb: np.ndarray, full_size: tuple[int, int], ticket: Ticket | None = None) -> Result:
        """Resize and hand the image to the shared batch first, then find faces in this thread while
        the batch runs: the CPU face detector works beside the backbone, not in front of it."""
        if self.models is None:
            raise ModelUnavailable(self.error or "models are not loaded")
        pending = self.batcher.submit(to_input(rgb, self.models.backbone.input_size), ticket)
        faces = self.models.faces.detect(rgb, full_size)
        outputs, models, batch_size = pending.result(timeout=600)
        result = interpret(faces, outputs, models)
        result.batch_size = batch_size
        return result

    # ---- results, written in bulk: one transaction for all jobs that finish together ----------
    def _write_batch(self, outcomes: list[tuple[str, dict | None, tuple[str, str] | None]]) -> list[str]:
        statuses = []
        with session_scope(self.sessions) as session:
            for job_id, result, error in outcomes:
                moved = jobs.fail(session, job_id, *error) if error else jobs.succeed(session, job_id, result)
                if not moved:  # a redelivered message finished first; the job keeps its one result
                    log.warning("job %s was already finished; duplicate result discarded", job_id)
                statuses.append((jobs.FAILED if error else jobs.SUCCEEDED) if moved else "duplicate")
        return statuses

    def finish(self, job_id: str, result: dict | None = None, error: tuple[str, str] | None = None) -> str:
        """Record a job's end; returns once it is committed, so the message is acked only after."""
        return self.writer.submit((job_id, result, error)).result(timeout=120)

    def describe(self) -> dict[str, Any]:
        return self.models.describe() if self.models else {"error": self.error}

    def close(self) -> None:
        for batcher in (self.batcher, self.writer):
            if batcher:
                batcher.close()
        self.engine.dispose()


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
