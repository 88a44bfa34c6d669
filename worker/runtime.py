"""What one worker process runs an image through: the model holder, the shared batch, the result writer.

Built when the worker starts (Celery's worker_init; the threads pool never forks, so TensorFlow
stays in one process). Task threads call `classify()`; one inference thread runs the batches.
"""
from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np

from ml.pipeline import Models, Outputs, Result, forward, interpret
from ml.preprocess import to_input
from shared.db import make_engine, make_sessionmaker
from shared.settings import Settings
from shared.storage import ImageStore
from worker.batcher import Announcement, Batcher
from worker.model_holder import ModelHolder
from worker.result_writer import ResultWriter


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_engine(settings.database_url)
        self.sessions = make_sessionmaker(self.engine)
        self.store = ImageStore(settings.storage_dir)
        self.holder = ModelHolder(settings)
        self.batcher = Batcher(self._run_batch, settings.max_batch, settings.max_batch_delay_ms / 1000)
        self.writer = ResultWriter(self.sessions, settings.max_batch)

    def setup(self) -> None:
        self.holder.load()

    def announce(self, image_coming: bool = True) -> AbstractContextManager[Announcement | None]:
        """Hold the batch being gathered for this task's image while it is read and decoded."""
        return self.batcher.announce() if image_coming else nullcontext()

    def _run_batch(self, inputs: list[np.ndarray]) -> list[tuple[Outputs, Models, int]]:
        models = self.holder.current()  # read once: the whole batch runs with one head
        outputs = forward(np.stack(inputs), models)
        return [(out, models, len(inputs)) for out in outputs]

    def classify(self, rgb: np.ndarray, full_size: tuple[int, int], announced: Announcement | None = None) -> Result:
        """Hand the resized image to the shared batch first, then find faces in this thread while the
        batch runs: the CPU face detector works beside the backbone, not in front of it."""
        models = self.holder.current()
        pending = self.batcher.submit(to_input(rgb, models.backbone.input_size), announced)
        faces = models.faces.detect(rgb, full_size)
        outputs, batch_models, batch_size = pending.result(timeout=600)
        result = interpret(faces, outputs, batch_models)
        result.batch_size = batch_size
        return result

    def finish(self, job_id: str, result: dict | None = None, error: tuple[str, str] | None = None) -> str:
        return self.writer.finish(job_id, result, error)

    def describe(self) -> dict[str, Any]:
        return self.holder.describe()

    def close(self) -> None:
        self.batcher.close()
        self.writer.close()
        self.engine.dispose()
