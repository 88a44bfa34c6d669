"""Job results written in bulk: one transaction for all the jobs that finish together."""
from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import sessionmaker

from shared import jobs
from shared.db import session_scope
from worker.batcher import Batcher

log = logging.getLogger(__name__)
Outcome = tuple[str, "dict[str, Any] | None", "tuple[str, str] | None"]  # job id, result, (code, message)


class ResultWriter:
    def __init__(self, sessions: sessionmaker, max_batch: int) -> None:
        self.sessions = sessions
        # No wait: under load, results pile up while a write runs and go in together.
        self._batcher = Batcher(self._write, max_batch, 0.0, name="result-writer")

    def finish(self, job_id: str, result: dict[str, Any] | None = None, error: tuple[str, str] | None = None) -> str:
        """Record a job's end; returns once it is committed, so the message is acked only after."""
        return self._batcher.submit((job_id, result, error)).result(timeout=120)

    def _write(self, outcomes: list[Outcome]) -> list[str]:
        statuses = []
        with session_scope(self.sessions) as session:
            for job_id, result, error in outcomes:
                moved = jobs.fail(session, job_id, *error) if error else jobs.succeed(session, job_id, result)
                if not moved:  # a redelivered message finished first; the job keeps its one result
                    log.warning("job %s was already finished; duplicate result discarded", job_id)
                statuses.append((jobs.FAILED if error else jobs.SUCCEEDED) if moved else "duplicate")
        return statuses

    def close(self) -> None:
        self._batcher.close()
