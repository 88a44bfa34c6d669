"""What one worker process runs an image through: the model holder, the shared batch, the result writer.

Built when the worker starts (Celery's worker_init; the threads pool never forks, so TensorFlow
stays in one process). Task threads call `classify()`, or `submit()` for each
image of a chunk and then `answer()` for each, so a chunk's images share forward passes; one
inference thread runs the batches; the answer (faces only where the dog rule says no dog) is
ml.pipeline.answer, on the task's thread. Reading, decoding and resizing run on `decoder`, a pool
of one thread per core: Pillow and OpenCV release the GIL while they work, so a chunk's images
decode in parallel, and the next batch's decode while this one is in the model (measured on the
384 real photos, 2 cores shared with another busy process: 2 threads decode at 1.7x one thread's
rate, decode and resize at 1.3x; threads, not processes, so no image crosses a process boundary).
"""
from __future__ import annotations

import os
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np

from ml.pipeline import Models, Outputs, Result, answer, forward
from ml.preprocess import to_uint8
from shared.db import make_engine, make_sessionmaker
from shared.settings import Settings
from shared.storage import open_image_store
from worker import metrics
from worker.batcher import Announcement, Batcher
from worker.model_holder import ModelHolder, resolve_max_batch
from worker.priority import InteractiveFirst
from worker.result_writer import Outcome, ResultWriter

BULK_CHUNKS_IN_FLIGHT = 2
BULK_NICE = 10  # album threads' niceness: with the cores contended, nice-0 threads get ~90% of them


def lower_priority() -> None:
    """Run this thread (a bulk-lane one) at BULK_NICE. Linux sets a thread's own niceness by its id;
    raising it needs no privilege. Elsewhere (or refused) nothing changes but the priority."""
    if sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BULK_NICE)
        except OSError:
            pass


@dataclass
class BatchShare:
    """One image's part of a batch: its outputs, the models that ran, and what the batch cost."""

    outputs: Outputs
    models: Models
    batch_size: int
    model_ms: float
    done_at: float  # perf_counter when the batch ended: an image's queue time stops here, not when it is read


@dataclass
class Pending:
    """An image handed to the shared batch, not answered yet."""

    future: Future
    submitted_at: float


def _ms_since(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)


def decode_threads(settings: Settings) -> int:
    """DOGBREED_DECODE_THREADS, or one per core this process may run on (its CPU affinity, as a
    container's cpuset sets it)."""
    if settings.decode_threads:
        return settings.decode_threads
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class Runtime:
    def __init__(self, settings: Settings) -> None:
        settings = settings.with_(max_batch=resolve_max_batch(settings))  # "auto" decided here, TF loaded
        self.settings = settings
        self.max_batch: int = settings.max_batch or 1
        # With lanes, this pool decodes album images only (at a lower OS priority, see below).
        self.decoder = ThreadPoolExecutor(decode_threads(settings), thread_name_prefix="decode",
                                          initializer=lower_priority if settings.lanes else None)
        # The interactive lane's own decode threads: album decodes waiting for their turn never block them.
        self.urgent_decoder = ThreadPoolExecutor(decode_threads(settings), thread_name_prefix="decode-urgent")
        self._buffer: np.ndarray | None = None  # the batch, stacked in place: allocated once, reused
        self.engine = make_engine(settings.database_url)
        self.sessions = make_sessionmaker(self.engine)
        self.store = open_image_store(settings)
        self.holder = ModelHolder(settings)
        self.batcher = Batcher(self._run_batch, self.max_batch, settings.max_batch_delay_ms / 1000)
        # Lanes: album chunks run on these threads, at most BULK_CHUNKS_IN_FLIGHT at once (one decoding
        # while one is in the model) and at a lower OS priority, so an interactive job arriving
        # meanwhile finds task threads, the cores and the next batch.
        self.bulk_runner = (ThreadPoolExecutor(BULK_CHUNKS_IN_FLIGHT, thread_name_prefix="bulk", initializer=lower_priority)
                            if settings.lanes else None)
        self.interactive = InteractiveFirst(settings.lanes)  # album work yields to it between stages
        self.writer = ResultWriter(self.sessions, self.max_batch, _redis(settings), settings.queue)

    def setup(self) -> None:
        self.holder.load()

    def announce(self, image_coming: bool = True) -> AbstractContextManager[Announcement | None]:
        """Hold the batch being gathered for this task's image while it is read and decoded."""
        return self.batcher.announce() if image_coming else nullcontext()

    def _stack(self, inputs: list[np.ndarray], models: Models) -> np.ndarray:
        """The batch's images copied into the reused uint8 buffer, as many rows as its padded size
        (rows past the images hold an earlier batch's pixels: their outputs are dropped)."""
        n, first = len(inputs), inputs[0]
        if self._buffer is None or self._buffer.shape[1:] != first.shape or len(self._buffer) < n:
            self._buffer = np.zeros((max(n, self.max_batch), *first.shape), np.uint8)
        for row, image in zip(self._buffer, inputs):
            row[...] = image
        return self._buffer[:min(models.backbone.padded_size(n), len(self._buffer))]

    def _run_batch(self, inputs: list[np.ndarray]) -> list[BatchShare]:
        start = time.perf_counter()
        models = self.holder.current()  # read once: the whole batch runs with one head
        outputs = forward(self._stack(inputs, models), models, count=len(inputs))
        model_ms = _ms_since(start)
        metrics.BUSY.add(start, time.perf_counter())
        metrics.BATCH_SIZE.observe(len(inputs))
        metrics.INFERENCE_IMAGES.inc(len(inputs))
        metrics.STAGE_SECONDS.labels("model").observe(model_ms / 1000)
        done_at = time.perf_counter()
        return [BatchShare(out, models, len(inputs), model_ms, done_at) for out in outputs]

    def classify(self, rgb: np.ndarray, full_size: tuple[int, int], announced: Announcement | None = None) -> Result:
        """The shared batch first; then this image's answer in this thread."""
        return self.answer(rgb, full_size, self.submit(rgb, announced))

    def submit(self, rgb: np.ndarray, announced: Announcement | None = None) -> Pending:
        """Into the batch being gathered, without waiting: a chunk puts all its images in first."""
        models = self.holder.current()
        return self.submit_input(to_uint8(rgb, models.backbone.input_size), announced)

    def submit_input(self, resized: np.ndarray, announced: Announcement | None = None, urgent: bool = False) -> Pending:
        """An image already resized to the model's input (uint8) into the batch being gathered
        (`urgent`, the interactive lane's: ahead of the images still waiting for a batch)."""
        return Pending(self.batcher.submit(resized, announced, urgent), time.perf_counter())

    def input_size(self) -> int:
        return self.holder.current().backbone.input_size

    def answer(self, rgb: np.ndarray, full_size: tuple[int, int], pending: Pending) -> Result:
        """Wait for the image's batch, then its answer (faces where the dog rule says no dog) in this thread."""
        share: BatchShare = pending.future.result(timeout=600)
        waited_ms = max(0.0, round((share.done_at - pending.submitted_at) * 1000, 2))
        result = answer(rgb, share.outputs, share.models, full_size)
        result.batch_size = share.batch_size
        result.stages_ms = {"queue": round(max(0.0, waited_ms - share.model_ms), 2), "model": share.model_ms,
                            **result.stages_ms}
        for stage in ("queue", "faces"):
            if stage in result.stages_ms:
                metrics.STAGE_SECONDS.labels(stage).observe(result.stages_ms[stage] / 1000)
        return result

    def finish_many(self, outcomes: list[Outcome]) -> list[str]:
        """A chunk's ends, committed together before its one ack."""
        return self.writer.finish_many(outcomes)

    def describe(self) -> dict[str, Any]:
        return self.holder.describe()

    def close(self) -> None:
        self.decoder.shutdown(wait=False, cancel_futures=True)
        self.urgent_decoder.shutdown(wait=False, cancel_futures=True)
        if self.bulk_runner is not None:
            self.bulk_runner.shutdown(wait=False, cancel_futures=True)
        self.batcher.close()
        self.writer.close()
        self.engine.dispose()


def _redis(settings: Settings):
    """The broker's Redis, where finished-job totals are kept for the web's /metrics (none without a broker)."""
    if not settings.broker_url:
        return None
    import redis

    return redis.Redis.from_url(settings.broker_url, socket_connect_timeout=2, socket_timeout=5)
