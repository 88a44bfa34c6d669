"""The job state machine on real SQLite and PostgreSQL."""
from sqlalchemy import update

from shared import jobs
from shared.db import session_scope
from shared.tables import Job
from tests.factories import ago, make_job


def new_job(sessions, **columns) -> str:
    with session_scope(sessions) as s:
        return make_job(s, **columns).id


def status(sessions, job_id):
    with session_scope(sessions) as s:
        job = s.get(Job, job_id)
        return job.status, job.attempts


def test_forward_only_and_exactly_one_result(sessions):
    job_id = new_job(sessions)
    assert status(sessions, job_id) == ("queued", 0)
    with session_scope(sessions) as s:
        assert jobs.claim(s, job_id, "w1", max_attempts=3) is not None
    assert status(sessions, job_id) == ("running", 1)
    with session_scope(sessions) as s:
        assert jobs.succeed(s, job_id, {"kind": "dog"})
    with session_scope(sessions) as s:  # a redelivered message: nothing changes
        assert jobs.claim(s, job_id, "w2", max_attempts=3) is None
        assert not jobs.succeed(s, job_id, {"kind": "other"})
        assert not jobs.fail(s, job_id, "late", "too late")
    with session_scope(sessions) as s:
        job = s.get(Job, job_id)
        assert (job.status, job.result, job.attempts, job.error_code) == ("succeeded", {"kind": "dog"}, 1, None)


def test_a_job_that_keeps_dying_fails_with_the_reason(sessions):
    job_id = new_job(sessions)
    for _ in range(2):
        with session_scope(sessions) as s:
            assert jobs.claim(s, job_id, "w", max_attempts=2)
    with session_scope(sessions) as s:
        assert jobs.claim(s, job_id, "w", max_attempts=2) is None
    with session_scope(sessions) as s:
        job = s.get(Job, job_id)
        assert job.status == "failed" and job.error_code == "too_many_attempts" and "2 attempts" in job.error_message


def test_a_duplicate_message_does_not_take_a_job_another_live_worker_runs(sessions):
    job_id = new_job(sessions)
    with session_scope(sessions) as s:
        assert jobs.claim(s, job_id, "w1", max_attempts=3)
    with session_scope(sessions) as s:
        assert jobs.claim(s, job_id, "w2", max_attempts=3) is None  # w1 still has it
        assert jobs.claim(s, job_id, "w1", max_attempts=3)  # w1's own retry after a passing fault
    assert status(sessions, job_id) == ("running", 2)


def test_a_result_the_database_cannot_store_fails_that_job_alone(sessions):
    """A NaN (PostgreSQL's json rejects it) must not fail the batch written with it, nor be retried."""
    bad, good = new_job(sessions), new_job(sessions)
    with session_scope(sessions) as s:  # one write batch: one transaction
        for job_id in (bad, good):
            jobs.claim(s, job_id, "w1", max_attempts=3)
        jobs.succeed(s, bad, {"kind": "dog", "dog_score": float("nan")})
        jobs.succeed(s, good, {"kind": "dog", "dog_score": 0.9})
    with session_scope(sessions) as s:
        failed, ok = s.get(Job, bad), s.get(Job, good)
        assert (failed.status, failed.error_code, failed.result) == ("failed", "invalid_result", None)
        assert (ok.status, ok.result) == ("succeeded", {"kind": "dog", "dog_score": 0.9})


def test_stale_jobs_are_those_past_the_deadline(sessions):
    fresh, old = new_job(sessions), new_job(sessions, created_at=ago(days=1))
    with session_scope(sessions) as s:
        stale = [j.id for j in jobs.stale_jobs(s, older_than_s=60)]
        assert stale == [old] and fresh not in stale
        assert jobs.count_unfinished(s) == 2


def test_history_is_newest_first_paginated_and_per_owner(sessions):
    ids = [new_job(sessions) for _ in range(5)]
    with session_scope(sessions) as s:
        rows, total = jobs.history(s, owner_id=None, page=1, per_page=2)
        rows2, _ = jobs.history(s, owner_id=None, page=3, per_page=2)
        mine, mine_total = jobs.history(s, owner_id=12345, page=1, per_page=10)
    assert total == 5 and [r.id for r in rows] == ids[::-1][:2] and [r.id for r in rows2] == ids[:1]
    assert (mine, mine_total) == ([], 0)


def test_job_ids_are_unguessable(sessions):
    ids = {new_job(sessions) for _ in range(20)}
    assert len(ids) == 20 and all(len(i) >= 22 for i in ids)


def test_a_canceled_job_never_gets_a_result_even_from_a_running_batch(sessions):
    job_id = new_job(sessions)
    with session_scope(sessions) as s:
        assert jobs.claim(s, job_id, "w1", max_attempts=3) is not None  # its batch is running
    with session_scope(sessions) as s:
        assert jobs.cancel(s, job_id)
    with session_scope(sessions) as s:  # the batch ends: its result and any retry are refused
        assert not jobs.succeed(s, job_id, {"kind": "dog"})
        assert not jobs.fail(s, job_id, "late", "too late")
        assert jobs.claim(s, job_id, "w2", max_attempts=3) is None
        assert not jobs.cancel(s, job_id)
    with session_scope(sessions) as s:
        job = s.get(Job, job_id)
        assert (job.status, job.result, job.finished_at is not None) == ("canceled", None, True)
        assert jobs.to_dict(job)["result"] is None and jobs.count_unfinished(s) == 0


def test_a_job_with_a_callback_is_noted_when_it_ends_and_only_once(sessions):
    from shared.webhooks import ended_with_callback

    plain, hooked = new_job(sessions), new_job(sessions, callback_url="https://example.com/hook")
    with session_scope(sessions) as s:
        assert jobs.succeed(s, plain, {"kind": "dog"}) and jobs.succeed(s, hooked, {"kind": "human"})
        assert not jobs.cancel(s, hooked)
        s.commit()
        assert ended_with_callback(s) == [hooked] and ended_with_callback(s) == []
        job = s.get(Job, hooked)
        assert job.result_kind == "human" and jobs.to_dict(job)["webhook"]["status"] == "pending"


def statements_run(sessions, work) -> list[str]:
    """The SQL statements `work(session)` sends to the database, its commit excluded."""
    from sqlalchemy import event

    sent: list[str] = []
    with session_scope(sessions) as s:
        engine = s.get_bind()
        listener = lambda conn, cursor, statement, *_: sent.append(statement)  # noqa: E731
        event.listen(engine, "before_cursor_execute", listener)
        try:
            work(s)
        finally:
            event.remove(engine, "before_cursor_execute", listener)
    return sent


def test_a_chunk_is_claimed_in_one_statement_and_each_job_counts_its_own_attempt(sessions):
    ids = [new_job(sessions) for _ in range(4)]
    with session_scope(sessions) as s:  # one job has already been tried twice elsewhere and given back
        s.execute(update(Job).where(Job.id == ids[2]).values(attempts=2))
    claimed: list = []
    sent = statements_run(sessions, lambda s: claimed.extend(jobs.claim_chunk(s, ids, "w1", max_attempts=5)))
    assert len(sent) == 1 and sent[0].lstrip().upper().startswith("UPDATE"), sent
    assert [c.id for c in claimed] == ids and [c.attempts for c in claimed] == [1, 1, 3, 1]
    assert claimed[0].image_sha256 == "a" * 64 and (claimed[0].image_width, claimed[0].image_format) == (8, "PNG")
    assert [status(sessions, job_id) for job_id in ids] == [("running", 1), ("running", 1), ("running", 3), ("running", 1)]


def test_a_chunk_claim_keeps_every_per_job_rule(sessions):
    queued, done, canceled, elsewhere, mine, spent = (new_job(sessions) for _ in range(6))
    with session_scope(sessions) as s:
        assert jobs.claim(s, done, "w1", max_attempts=3) and jobs.succeed(s, done, {"kind": "dog"})
        assert jobs.cancel(s, canceled)
        assert jobs.claim(s, elsewhere, "w2", max_attempts=3)  # another node runs it now
        assert jobs.claim(s, mine, "w1", max_attempts=3)  # this node's earlier try, before a passing fault
        s.execute(update(Job).where(Job.id == spent).values(attempts=3))
    chunk = [queued, done, canceled, elsewhere, mine, spent, "no-such-job"]
    with session_scope(sessions) as s:
        claimed = [c.id for c in jobs.claim_chunk(s, chunk, "w1", max_attempts=3)]
    assert claimed == [queued, mine]
    assert status(sessions, queued) == ("running", 1) and status(sessions, mine) == ("running", 2)
    assert status(sessions, done) == ("succeeded", 1) and status(sessions, canceled) == ("canceled", 0)
    assert status(sessions, elsewhere) == ("running", 1)
    with session_scope(sessions) as s:
        assert s.get(Job, elsewhere).node == "w2"
        gave_up = s.get(Job, spent)
        assert (gave_up.status, gave_up.error_code) == ("failed", "too_many_attempts")
        assert s.get(Job, done).result == {"kind": "dog"}
    with session_scope(sessions) as s:  # the same chunk delivered again to another node: nothing moves
        assert jobs.claim_chunk(s, chunk, "w3", max_attempts=3) == []
    assert status(sessions, queued) == ("running", 1)
