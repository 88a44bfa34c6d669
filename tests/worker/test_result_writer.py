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


def test_a_batch_of_ends_is_one_update_and_each_job_keeps_its_own_end(sessions, settings):
    """A chunk's results, a refused NaN, an error, a canceled and an already finished job: one UPDATE
    writes the lot, and the /metrics totals count what each job really ended as."""
    import redis

    from shared import job_metrics
    from tests.shared.test_jobs import new_job, statements_run

    ok, human, nan, broken, canceled, done = (new_job(sessions) for _ in range(6))
    with session_scope(sessions) as s:
        jobs.claim_chunk(s, [ok, human, nan, broken, canceled, done], "w1", max_attempts=3)
        assert jobs.cancel(s, canceled) and jobs.succeed(s, done, {"kind": "dog"})
    outcomes = [(ok, {"kind": "dog", "sentence": "a dog"}, None), (human, {"kind": "human"}, None),
                (nan, {"kind": "dog", "dog_score": float("nan")}, None), (broken, None, ("corrupt_image", "bad bytes")),
                (canceled, {"kind": "dog"}, None), (done, {"kind": "neither"}, None), (ok, {"kind": "neither"}, None)]
    client = redis.Redis.from_url(settings.broker_url)
    writer = ResultWriter(sessions, max_batch=8, redis_client=client, queue=settings.queue)
    try:
        said: list = []
        sent = statements_run(sessions, lambda s: said.extend(writer.finish_many(outcomes)))
    finally:
        writer.close()
    verbs = [sql.split(None, 1)[0].upper() for sql in sent]
    # One UPDATE for the batch; a SELECT only per refused job, to log why; none to count the metrics.
    assert verbs.count("UPDATE") == 1 and verbs.count("SELECT") == 3, sent
    assert said == ["succeeded", "succeeded", "failed", "failed", "duplicate", "duplicate", "duplicate"]
    with session_scope(sessions) as s:
        rows = {job_id: s.get(Job, job_id) for job_id in (ok, human, nan, broken, canceled, done)}
        assert (rows[ok].status, rows[ok].result, rows[ok].result_kind) == ("succeeded", outcomes[0][1], "dog")
        assert rows[human].result_kind == "human" and rows[ok].finished_at is not None
        assert (rows[nan].status, rows[nan].error_code, rows[nan].result) == ("failed", "invalid_result", None)
        assert (rows[broken].status, rows[broken].error_code, rows[broken].error_message) == (
            "failed", "corrupt_image", "bad bytes")
        assert (rows[canceled].status, rows[canceled].result) == ("canceled", None)
        assert (rows[done].status, rows[done].result) == ("succeeded", {"kind": "dog"})
    totals = job_metrics.read(client, settings.queue)
    assert totals.finished == {("succeeded", "dog"): 1, ("succeeded", "human"): 1, ("failed", "none"): 2}
    assert totals.count == 4


def test_a_batch_of_errors_alone_is_written(sessions):
    """No result in the whole batch: the result column is NULL for all (PostgreSQL must still take it)."""
    with session_scope(sessions) as s:
        ids = [make_job(s).id for _ in range(2)]
    writer = ResultWriter(sessions, max_batch=8)
    try:
        assert writer.finish_many([(job_id, None, ("image_missing", "gone")) for job_id in ids]) == ["failed"] * 2
    finally:
        writer.close()
    with session_scope(sessions) as s:
        assert [(s.get(Job, j).status, s.get(Job, j).error_code, s.get(Job, j).result) for j in ids] == [
            ("failed", "image_missing", None)] * 2
