"""The reaper re-enqueues a webhook whose job ended long ago but whose delivery never started."""
import json
from datetime import timedelta

import redis
from sqlalchemy import update

from shared import jobs
from shared.db import make_engine, make_sessionmaker, session_scope
from shared.tables import Job, utcnow
from worker.reaper import Reaper


def test_a_lost_webhook_message_is_sent_again(settings):
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    ids = {}
    with session_scope(sessions) as s:
        for name, attempts, ended_ago_s in (("lost", 0, 3600), ("retrying", 2, 3600), ("just_ended", 0, 1)):
            job = jobs.create_job(s, owner_id=None, sha256="a" * 64, size=1, fmt="PNG", width=1, height=1,
                                  filename=None, callback_url="https://example.com/hook")
            jobs.fail(s, job.id, "x", "y")
            s.execute(update(Job).where(Job.id == job.id).values(
                webhook_attempts=attempts, finished_at=utcnow() - timedelta(seconds=ended_ago_s)))
            ids[name] = job.id
    engine.dispose()
    counts = Reaper(settings.with_(job_deadline_s=600)).run_once()
    assert counts["webhooks"] == 1
    queued = [json.loads(m) for m in redis.Redis.from_url(settings.broker_url).lrange(settings.queue, 0, -1)]
    assert [(m["headers"]["task"], m["headers"]["argsrepr"]) for m in queued] == [
        ("dogbreed.webhook", repr([ids["lost"]]))]
