"""Job results written in bulk: one transaction for all the jobs that finish together."""
from __future__ import annotations

import logging
import time
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from shared import job_metrics, jobs
from shared.db import session_scope
from shared.tables import Job
from worker.batcher import Batcher
from worker.metrics import STAGE_SECONDS

log = logging.getLogger(__name__)
Outcome = tuple[str, "dict[str, Any] | None", "tuple[str, str] | None"]  # job id, result, (code, message)


def _log_refused(session: Session, job_id: str) -> None:
    """A job keeps its one ending: say whether the user canceled it or a redelivered message finished first."""
    if session.scalar(select(Job.status).where(Job.id == job_id)) == jobs.CANCELED:
        log.info("job %s was canceled while it ran; its result is discarded", job_id)
    else:
        log.warning("job %s was already finished; duplicate result discarded", job_id)


class ResultWriter:
    def __init__(self, sessions: sessionmaker, max_batch: int, redis_client=None, queue: str = "dogbreed") -> None:
        self.sessions = sessions
        self.redis, self.queue = redis_client, queue  # finished-job totals for the web's /metrics
        # No wait: under load, results pile up while a write runs and go in together.
        self._batcher = Batcher(self._write, max_batch, 0.0, name="result-writer")

    def finish(self, job_id: str, result: dict[str, Any] | None = None, error: tuple[str, str] | None = None) -> str:
        """Record a job's end; returns once it is committed, so the message is acked only after."""
        return self.finish_many([(job_id, result, error)])[0]

    def finish_many(self, outcomes: list[Outcome]) -> list[str]:
        """Record the ends of a chunk's jobs; they join one write (with whatever else is waiting) and
        this returns once all are committed, so the chunk's message is acked only after."""
        for job_id, result, error in outcomes:  # here, not in the write, where it would fail the whole batch
            if (result is None) == (error is None):
                raise ValueError(f"job {job_id}: finish() takes a result or an error, not both or neither")
        return [future.result(timeout=120) for future in self._batcher.submit_all(outcomes)]

    def _write(self, outcomes: list[Outcome]) -> list[str]:
        start = time.perf_counter()
        statuses = []
        with session_scope(self.sessions) as session:
            for job_id, result, error in outcomes:
                if error:
                    moved = jobs.fail(session, job_id, *error)
                else:  # finish() let through exactly one of a result and an error
                    moved = jobs.succeed(session, job_id, cast("dict[str, Any]", result))
                if not moved:
                    _log_refused(session, job_id)
                statuses.append((jobs.FAILED if error else jobs.SUCCEEDED) if moved else "duplicate")
        STAGE_SECONDS.labels("write").observe(time.perf_counter() - start)
        self._count([(o, s) for o, s in zip(outcomes, statuses) if s != "duplicate"])
        return statuses

    def _count(self, moved: list[tuple[Outcome, str]]) -> None:
        """After the commit, once per job that this write ended (never a duplicate)."""
        if self.redis is None or not moved:
            return
        try:
            with session_scope(self.sessions) as session:
                times = {row.id: (row.created_at, row.finished_at) for row in session.execute(
                    select(Job.id, Job.created_at, Job.finished_at).where(Job.id.in_([o[0] for o, _ in moved])))}
        except Exception as exc:
            log.warning("finished jobs not counted for /metrics: %s", exc)
            return
        job_metrics.record(self.redis, self.queue, [
            job_metrics.ended(status, result, *[jobs.as_utc(t) for t in times.get(job_id, (None, None))])
            for (job_id, result, _), status in moved])

    def close(self) -> None:
        self._batcher.close()
