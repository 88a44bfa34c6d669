"""The reaper reads chunk messages: an album job whose chunk still waits gets no second message, and
a dead node's held chunk goes back job by job. Real Redis, real databases."""
import json
from datetime import timedelta

import redis
from sqlalchemy import update

from shared import jobs
from shared.celeryconf import TASK_CLASSIFY_CHUNK, make_celery
from shared.db import make_engine, make_sessionmaker, session_scope
from shared.tables import Job, utcnow
from worker import heartbeat
from worker.reaper import Reaper


def queued_jobs(settings, n: int, queued_ago_s: int) -> list[str]:
    engine = make_engine(settings.database_url)
    with session_scope(make_sessionmaker(engine)) as s:
        ids = [jobs.create_job(s, owner_id=None, sha256="a" * 64, size=1, fmt="PNG", width=1, height=1,
                               filename=None).id for _ in range(n)]
        s.execute(update(Job).where(Job.id.in_(ids)).values(enqueued_at=utcnow() - timedelta(seconds=queued_ago_s)))
    engine.dispose()
    return ids


def queued_messages(settings) -> list[tuple[str, str]]:
    raw = redis.Redis.from_url(settings.broker_url).lrange(settings.queue, 0, -1)
    return [(m["headers"]["task"], m["headers"]["argsrepr"]) for m in map(json.loads, raw)]


def send_chunk(settings, ids: list[str]) -> None:
    celery = make_celery(settings, name="test-web")
    celery.send_task(TASK_CLASSIFY_CHUNK, args=[ids], queue=settings.queue)
    celery.close()


def test_album_jobs_whose_chunk_still_waits_get_no_second_message(settings):
    waiting, lost = queued_jobs(settings, 3, queued_ago_s=3600), queued_jobs(settings, 1, queued_ago_s=3600)
    send_chunk(settings, waiting)  # a long queue: the chunk is there, only old
    counts = Reaper(settings.with_(job_deadline_s=60)).run_once()
    assert counts["requeued"] == 1
    assert sorted(queued_messages(settings)) == [("dogbreed.classify", repr(lost)), (TASK_CLASSIFY_CHUNK, repr([waiting]))]


def test_a_dead_nodes_held_chunk_goes_back_job_by_job(settings):
    ids = queued_jobs(settings, 4, queued_ago_s=1)
    client = redis.Redis.from_url(settings.broker_url)
    dead = f"dead-{settings.queue}@localhost"  # it received the chunk, then was killed: no heartbeat key
    heartbeat.hold(client, settings.queue, dead, ids)
    assert heartbeat.held_by(client, settings.queue, dead) == set(ids)
    counts = Reaper(settings).reap_orphans()
    assert counts == {"requeued": 4, "failed": 0}
    assert sorted(queued_messages(settings)) == sorted(("dogbreed.classify", repr([job_id])) for job_id in ids)
    assert heartbeat.held_by(client, settings.queue, dead) == set()
    heartbeat.release(client, settings.queue, dead, ids)  # releasing what is gone is harmless


def test_a_dead_nodes_chunk_half_run_gets_one_message_per_job(settings):
    """It was running two jobs of the chunk it held and had not started the third: each job goes back
    once. Two messages for one job would run it twice and count two attempts for one interruption."""
    ids = queued_jobs(settings, 3, queued_ago_s=1)
    dead = f"dead-{settings.queue}@localhost"
    engine = make_engine(settings.database_url)
    with session_scope(make_sessionmaker(engine)) as s:
        assert [c.id for c in jobs.claim_chunk(s, ids[:2], dead, max_attempts=3)] == ids[:2]
    engine.dispose()
    heartbeat.hold(redis.Redis.from_url(settings.broker_url), settings.queue, dead, ids)
    assert Reaper(settings).reap_orphans() == {"requeued": 3, "failed": 0}
    assert sorted(queued_messages(settings)) == sorted(("dogbreed.classify", repr([job_id])) for job_id in ids)
