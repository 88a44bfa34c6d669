"""Thin tasks: claim the job rows -> pipeline -> write the results. A message carries only job ids:
one for a single job, a chunk of up to DOGBREED_MAX_BATCH for an album."""
from __future__ import annotations

import contextvars
import logging
import time
from collections import Counter
from contextlib import ExitStack, nullcontext
from typing import Any

from celery import Celery

from ml.backbone import ModelUnavailable
from ml.faces import DECODE_MAX_SIDE
from ml.preprocess import to_uint8
from shared import logs
from shared.celeryconf import BULK, TASK_CLASSIFY, TASK_CLASSIFY_CHUNK, TASK_NOOP, TASK_NOOP_CHUNK, lane_queue
from shared.db import session_scope
from shared.formats import ALLOWED_FORMATS
from shared.images import ImageError, load_rgb
from shared.jobs import NOOP_KIND, Claimed, claim_chunk
from worker.batcher import Announcement
from worker.metrics import STAGE_SECONDS
from worker.result_writer import Outcome
from worker.retry import PASSING_FAULTS, retry_options
from worker.runtime import Pending, Runtime

log = logging.getLogger(__name__)
Error = tuple[str, str]


def _failure(job_id: str, exc: Exception) -> Error:
    """What a job's user reads when its image or model failed; passing faults are not caught here."""
    if isinstance(exc, FileNotFoundError):
        return "image_missing", "The stored image is gone (expired or deleted); upload it again."
    if isinstance(exc, ImageError):
        return exc.code, exc.message
    if isinstance(exc, ModelUnavailable):
        return "model_unavailable", str(exc)
    log.exception("job %s failed", job_id, exc_info=exc)
    return "internal_error", f"The classifier failed: {type(exc).__name__}: {exc}"


def _decode_and_submit(runtime: Runtime, job: Claimed, announced: Announcement,
                       handed_at: float, urgent: bool = False) -> tuple[Any, dict[str, float], Pending]:
    """On a decode thread: read, decode and resize one image, and hand it to the batch at once."""
    if not urgent:
        runtime.interactive.wait_turn()
    start = time.perf_counter()
    try:
        data = runtime.store.read(job.image_sha256, ALLOWED_FORMATS.get(job.image_format, "bin"))
        rgb = load_rgb(data, runtime.settings.max_pixels, max_side=DECODE_MAX_SIDE)
        resized = to_uint8(rgb, runtime.input_size())
        stages = {"decode_wait": round((start - handed_at) * 1000, 2),  # for a free decode thread
                  "decode": round((time.perf_counter() - start) * 1000, 2)}  # read, decode, resize
        for stage, ms in stages.items():  # the worker's metrics tell the two apart
            STAGE_SECONDS.labels(stage).observe(ms / 1000)
        return rgb, stages, runtime.submit_input(resized, announced, urgent)
    finally:
        announced.end()  # submitted or failed: the batch need not wait for it


def run_chunk(runtime: Runtime, job_ids: list[str], node: str, noop: bool = False, urgent: bool = False
              ) -> dict[str, str]:
    """Run a chunk of jobs to their ends: one claim, every image into the shared batch before any
    answer is awaited, one bulk write. Returns each job's status ('skipped': finished, canceled or
    another node's). Passing faults (database or broker blips) propagate, so the task retries the
    chunk with backoff; its jobs already ended are skipped then. `urgent`: the message came by the
    interactive lane, so its images go ahead in the batch; a bulk one waits for a bulk thread
    (Runtime.bulk_runner: few, low priority) and runs there, in this task's context."""
    if runtime.bulk_runner is not None and not urgent:
        context = contextvars.copy_context()  # the log lines keep their job and request ids
        return runtime.bulk_runner.submit(context.run, _run_chunk, runtime, job_ids, node, noop, False).result()
    return _run_chunk(runtime, job_ids, node, noop, urgent)


def _run_chunk(runtime: Runtime, job_ids: list[str], node: str, noop: bool, urgent: bool) -> dict[str, str]:
    statuses = dict.fromkeys(job_ids, "skipped")
    with (runtime.interactive.turn() if urgent else nullcontext()), ExitStack() as stack:
        # The batch being gathered may wait for these images while they are claimed, read and decoded.
        announced = {} if noop else {job_id: stack.enter_context(runtime.batcher.announce(urgent))
                                   for job_id in statuses}
        with session_scope(runtime.sessions) as session:
            claimed = claim_chunk(session, list(statuses), node, runtime.settings.max_attempts)
        for job_id in announced.keys() - {job.id for job in claimed}:
            announced[job_id].end()  # nothing is coming from a job not claimed
        if noop:
            outcomes: list[Outcome] = [(job.id, {"kind": NOOP_KIND}, None) for job in claimed]
        else:
            outcomes = _classify(runtime, claimed, announced, urgent)
    for (job_id, _, _), status in zip(outcomes, runtime.finish_many(outcomes) if outcomes else []):
        statuses[job_id] = status
    return statuses


def _classify(runtime: Runtime, claimed: list[Claimed], announced: dict[str, Announcement],
              urgent: bool = False) -> list[Outcome]:
    """Every image to the decode threads at once, each into the shared batch as soon as it is ready,
    then answer each in order: the chunk decodes in parallel and shares batches. An urgent chunk
    decodes on its own pool, never in line behind an album's images (which wait for it, see priority.py)."""
    handed_at = time.perf_counter()
    pool = runtime.urgent_decoder if urgent else runtime.decoder
    decoding = {job.id: pool.submit(_decode_and_submit, runtime, job, announced[job.id], handed_at, urgent)
                for job in claimed}
    outcomes: list[Outcome] = []
    for job in claimed:
        try:
            rgb, stages, handed_in = decoding[job.id].result()
            if not urgent:
                runtime.interactive.wait_turn()
            result = runtime.answer(rgb, (job.image_width, job.image_height), handed_in)
            # The API's stages: waiting for a decode thread is part of the image's queue time.
            queue = round(result.stages_ms.get("queue", 0.0) + stages["decode_wait"], 2)
            result.stages_ms = {"decode": stages["decode"], **result.stages_ms, "queue": queue}
        except PASSING_FAULTS:
            raise
        except Exception as exc:
            outcomes.append((job.id, None, _failure(job.id, exc)))
        else:
            outcomes.append((job.id, result.to_dict(), None))
    return outcomes


def run_job(runtime: Runtime, job_id: str, node: str, noop: bool = False, urgent: bool = True) -> str:
    """Run one job to its end: a chunk of one. Returns the status it ended in ('skipped' when already finished)."""
    return run_chunk(runtime, [job_id], node, noop, urgent)[job_id]


RETRY_ON_PASSING_FAULTS = retry_options(first_s=1, max_s=30)  # 1, 2, 4 ... s: a blip is short


def register(app: Celery, runtime: Runtime) -> None:
    bulk_queue = lane_queue(runtime.settings, BULK)

    def urgent(task) -> bool:
        """Delivered by the interactive lane (or lanes are off: no lane waits for another)."""
        if not runtime.settings.lanes:
            return False
        return ((getattr(task.request, "delivery_info", None) or {}).get("routing_key") or "") != bulk_queue

    def run(task, job_id: str, noop: bool) -> str:
        with logs.job_context(job_id, _request_id(task.request)):
            status = run_job(runtime, job_id, task.request.hostname or "worker", noop=noop, urgent=urgent(task))
            log.info("job %s: %s", job_id, status)
            return status

    def run_many(task, job_ids: list[str], noop: bool) -> dict[str, int]:
        with logs.job_context(None, _request_id(task.request)):  # each job is named in its own line
            statuses = run_chunk(runtime, [str(job_id) for job_id in job_ids], task.request.hostname or "worker",
                                 noop=noop, urgent=urgent(task))
            for job_id, status in statuses.items():
                log.info("job %s: %s", job_id, status)
            counts = dict(Counter(statuses.values()))
            log.info("chunk of %d: %s", len(job_ids), counts)
            return counts

    @app.task(name=TASK_CLASSIFY, bind=True, acks_late=True, max_retries=5, ignore_result=True,
              **RETRY_ON_PASSING_FAULTS)
    def classify(self, job_id: str) -> str:
        return run(self, job_id, noop=False)

    @app.task(name=TASK_NOOP, bind=True, acks_late=True, max_retries=5, ignore_result=True,
              **RETRY_ON_PASSING_FAULTS)
    def noop(self, job_id: str) -> str:
        """The same queue and database path with no model: the pipeline's own overhead."""
        return run(self, job_id, noop=True)

    @app.task(name=TASK_CLASSIFY_CHUNK, bind=True, acks_late=True, max_retries=5, ignore_result=True,
              **RETRY_ON_PASSING_FAULTS)
    def classify_chunk(self, job_ids: list[str]) -> dict[str, int]:
        """An album's chunk: one message, one claim, shared batches, one bulk write, one ack."""
        return run_many(self, job_ids, noop=False)

    @app.task(name=TASK_NOOP_CHUNK, bind=True, acks_late=True, max_retries=5, ignore_result=True,
              **RETRY_ON_PASSING_FAULTS)
    def noop_chunk(self, job_ids: list[str]) -> dict[str, int]:
        return run_many(self, job_ids, noop=True)


def _request_id(request) -> str | None:
    """The web request's id, from the message headers the web set (None for a job the reaper re-sent)."""
    return getattr(request, "request_id", None) or (getattr(request, "headers", None) or {}).get("request_id")
