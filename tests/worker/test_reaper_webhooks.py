"""The reaper re-enqueues a webhook whose job ended long ago but whose delivery never started, on the
webhook list, and never one whose first attempt is being posted right now."""
import json

import redis

from shared.celeryconf import webhook_queue
from shared.redis_keys import webhook_inflight_key
from tests.factories import ago, database, make_job
from worker.reaper import Reaper


def queued_webhooks(settings) -> list[tuple[str, str]]:
    broker = redis.Redis.from_url(settings.broker_url)
    assert broker.llen(settings.queue) == 0  # nothing on the interactive lane
    return [(m["headers"]["task"], m["headers"]["argsrepr"])
            for m in map(json.loads, broker.lrange(webhook_queue(settings), 0, -1))]


def test_a_lost_webhook_message_is_sent_again(settings):
    with database(settings.database_url) as s:
        ids = {name: make_job(s, callback_url="https://example.com/hook", status="failed", error_code="x",
                              error_message="y", webhook_attempts=attempts, finished_at=ago(seconds=ended_ago_s)).id
               for name, attempts, ended_ago_s in (("lost", 0, 3600), ("retrying", 2, 3600), ("just_ended", 0, 1))}
    counts = Reaper(settings.with_(job_deadline_s=600)).run_once()
    assert counts["webhooks"] == 1
    assert queued_webhooks(settings) == [("dogbreed.webhook", repr([ids["lost"]]))]


def test_a_delivery_in_flight_is_not_sent_again(settings):
    with database(settings.database_url) as s:
        in_flight, lost = (make_job(s, callback_url="https://example.com/hook", status="failed", error_code="x",
                                    error_message="y", finished_at=ago(seconds=3600)).id for _ in range(2))
    # what a worker's delivery thread sets before it posts (worker/webhooks.py)
    redis.Redis.from_url(settings.broker_url).set(
        webhook_inflight_key(settings.queue, "job", in_flight, "completed"), "1", ex=60)
    assert Reaper(settings.with_(job_deadline_s=600)).run_once()["webhooks"] == 1
    assert queued_webhooks(settings) == [("dogbreed.webhook", repr([lost]))]
