"""The reaper re-enqueues a webhook whose job ended long ago but whose delivery never started."""
import json

import redis

from tests.factories import ago, database, make_job
from worker.reaper import Reaper


def test_a_lost_webhook_message_is_sent_again(settings):
    with database(settings.database_url) as s:
        ids = {name: make_job(s, callback_url="https://example.com/hook", status="failed", error_code="x",
                              error_message="y", webhook_attempts=attempts, finished_at=ago(seconds=ended_ago_s)).id
               for name, attempts, ended_ago_s in (("lost", 0, 3600), ("retrying", 2, 3600), ("just_ended", 0, 1))}
    counts = Reaper(settings.with_(job_deadline_s=600)).run_once()
    assert counts["webhooks"] == 1
    queued = [json.loads(m) for m in redis.Redis.from_url(settings.broker_url).lrange(settings.queue, 0, -1)]
    assert [(m["headers"]["task"], m["headers"]["argsrepr"]) for m in queued] == [
        ("dogbreed.webhook", repr([ids["lost"]]))]
