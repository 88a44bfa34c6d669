"""Job results written in bulk: one UPDATE, in one transaction, for all the jobs that finish together."""
from __future__ import annotations

import logging
import time
from typing import Any

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
        """One UPDATE for the whole batch; the rows it moved come back with RETURNING."""
        start = time.perf_counter()
        with session_scope(self.sessions) as session:
            ended = jobs.finish_many(session, outcomes)
            moved = [(job_id, ended.get(job_id)) for job_id, _, _ in outcomes]
            seen: set[str] = set()
            statuses = []
            for job_id, row in moved:
                if row is None or job_id in seen:  # refused, or a second outcome for one job in this batch
                    _log_refused(session, job_id)
                    statuses.append("duplicate")
                else:
                    statuses.append(row.status)
                seen.add(job_id)
        STAGE_SECONDS.labels("write").observe(time.perf_counter() - start)
        self._count([(ended[job_id], result) for (job_id, result, _), status in zip(outcomes, statuses)
                     if status != "duplicate"])
        return statuses

    def _count(self, ended: list[tuple[jobs.Ended, dict[str, Any] | None]]) -> None:
        """After the commit, once per job that this write ended (never a duplicate); its times came back
        with the UPDATE, so this reads nothing more from the database."""
        if self.redis is not None and ended:
            job_metrics.record(self.redis, self.queue, [
                job_metrics.ended(row.status, result if row.status == jobs.SUCCEEDED else None,
                                  row.created_at, row.finished_at) for row, result in ended])

    def close(self) -> None:
        self._batcher.close()
