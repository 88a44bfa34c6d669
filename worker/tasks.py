"""Thin tasks: load the job row -> pipeline -> write the result. The message carries only the job id."""
from __future__ import annotations

import logging
import time

from celery import Celery

from ml.backbone import ModelUnavailable
from ml.faces import DECODE_MAX_SIDE
from shared import logs
from shared.celeryconf import TASK_CLASSIFY, TASK_NOOP
from shared.db import session_scope
from shared.images import ALLOWED_FORMATS, ImageError, load_rgb
from shared.jobs import NOOP_KIND, claim
from worker.metrics import STAGE_SECONDS
from worker.retry import PASSING_FAULTS, retry_options
from worker.runtime import Runtime

log = logging.getLogger(__name__)


def run_job(runtime: Runtime, job_id: str, node: str, noop: bool = False) -> str:
    """Run one job to its end; returns the status it ended in ('skipped' when already finished).

    Passing faults (database or broker blips) propagate, so the task can retry with backoff.
    """
    with runtime.announce(image_coming=not noop) as announced:  # the batch being gathered may wait for it
        with session_scope(runtime.sessions) as session:
            job = claim(session, job_id, node, runtime.settings.max_attempts)
            if job is None:
                return "skipped"
            sha, fmt, size = job.image_sha256, job.image_format, (job.image_width, job.image_height)
        if noop:
            return runtime.finish(job_id, result={"kind": NOOP_KIND})
        try:
            start = time.perf_counter()
            data = runtime.store.read(sha, ALLOWED_FORMATS.get(fmt, "bin"))
            rgb = load_rgb(data, runtime.settings.max_pixels, max_side=DECODE_MAX_SIDE)
            decode_ms = round((time.perf_counter() - start) * 1000, 2)
            STAGE_SECONDS.labels("decode").observe(decode_ms / 1000)
            result = runtime.classify(rgb, size, announced)
            result.stages_ms = {"decode": decode_ms, **result.stages_ms}
        except FileNotFoundError:
            error = ("image_missing", "The stored image is gone (expired or deleted); upload it again.")
        except ImageError as exc:
            error = (exc.code, exc.message)
        except ModelUnavailable as exc:
            error = ("model_unavailable", str(exc))
        except PASSING_FAULTS:
            raise
        except Exception as exc:
            log.exception("job %s failed", job_id)
            error = ("internal_error", f"The classifier failed: {type(exc).__name__}: {exc}")
        else:
            return runtime.finish(job_id, result=result.to_dict())
        return runtime.finish(job_id, error=error)


RETRY_ON_PASSING_FAULTS = retry_options(first_s=1, max_s=30)  # 1, 2, 4 ... s: a blip is short


def register(app: Celery, runtime: Runtime) -> None:
    def run(task, job_id: str, noop: bool) -> str:
        with logs.job_context(job_id, _request_id(task.request)):
            status = run_job(runtime, job_id, task.request.hostname or "worker", noop=noop)
            log.info("job %s: %s", job_id, status)
            return status

    @app.task(name=TASK_CLASSIFY, bind=True, acks_late=True, max_retries=5, ignore_result=True,
              **RETRY_ON_PASSING_FAULTS)
    def classify(self, job_id: str) -> str:
        return run(self, job_id, noop=False)

    @app.task(name=TASK_NOOP, bind=True, acks_late=True, max_retries=5, ignore_result=True,
              **RETRY_ON_PASSING_FAULTS)
    def noop(self, job_id: str) -> str:
        """The same queue and database path with no model: the pipeline's own overhead."""
        return run(self, job_id, noop=True)


def _request_id(request) -> str | None:
    """The web request's id, from the message headers the web set (None for a job the reaper re-sent)."""
    return getattr(request, "request_id", None) or (getattr(request, "headers", None) or {}).get("request_id")
