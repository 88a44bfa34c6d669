"""Results written in bulk, on real SQLite and PostgreSQL."""
import logging

from shared import jobs
from shared.db import session_scope
from shared.tables import Job
from tests.factories import make_job
from worker.result_writer import ResultWriter


def test_a_job_canceled_while_it_ran_keeps_canceled_and_the_log_says_why(sessions, caplog):
    with session_scope(sessions) as s:
        canceled, redelivered = make_job(s).id, make_job(s).id
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
