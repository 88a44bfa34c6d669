"""Results written in bulk, on real SQLite and PostgreSQL."""
import logging

import pytest

from shared import jobs
from shared.db import make_engine, make_sessionmaker, session_scope
from shared.tables import Job
from tests.shared.test_jobs import new_job
from worker.result_writer import ResultWriter


@pytest.fixture
def sessions(database_url):
    engine = make_engine(database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


def test_a_job_canceled_while_it_ran_keeps_canceled_and_the_log_says_why(sessions, caplog):
    canceled, redelivered = new_job(sessions), new_job(sessions)
    for job_id in (canceled, redelivered):
        with session_scope(sessions) as s:
            assert jobs.claim(s, job_id, "w1", max_attempts=3) is not None
    with session_scope(sessions) as s:
        assert jobs.cancel(s, canceled) and jobs.succeed(s, redelivered, {"kind": "dog"})
    writer = ResultWriter(sessions, max_batch=8)
    try:
        with caplog.at_level(logging.INFO, logger="worker.result_writer"):
            assert writer.finish(canceled, {"kind": "dog"}) == "duplicate"
            assert writer.finish(redelivered, {"kind": "human"}) == "duplicate"
    finally:
        writer.close()
    said = {r.getMessage() for r in caplog.records}
    assert said == {f"job {canceled} was canceled while it ran; its result is discarded",
                    f"job {redelivered} was already finished; duplicate result discarded"}
    with session_scope(sessions) as s:
        assert [s.get(Job, j).status for j in (canceled, redelivered)] == ["canceled", "succeeded"]
