"""What the reaper requeues or fails is published on Redis once committed, naming the job and its album."""
import json
import time

import redis

from shared.redis_keys import job_events_channel
from shared.tables import Job
from tests.factories import ago, database, make_album
from worker.reaper import Reaper


def test_the_reaper_publishes_what_it_requeues_and_fails(settings):
    pubsub = redis.Redis.from_url(settings.broker_url).pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(job_events_channel(settings.queue))
    with database(settings.database_url) as s:
        album = make_album(s, ("a.jpg", "b.jpg"), status="running", node="gone@host", started_at=ago(hours=2))
        stuck, spent = [item["job_id"] for item in album.items]
        album_id = album.id
    with database(settings.database_url) as s:
        s.get(Job, spent).attempts = settings.max_attempts
    reaper = Reaper(settings.with_(job_deadline_s=600))
    reaper.run_once()
    seen: dict = {}
    deadline = time.monotonic() + 60  # a bound on the wait, not a figure under test
    while len(seen) < 2:
        assert time.monotonic() < deadline, f"the reaper published {seen} only"
        message = pubsub.get_message(timeout=1)
        if message and message["type"] == "message":
            seen.update({c["job"]: (c["status"], c["batch"]) for c in json.loads(message["data"])["changes"]})
    assert seen == {stuck: ("queued", album_id), spent: ("failed", album_id)}
    pubsub.close()
