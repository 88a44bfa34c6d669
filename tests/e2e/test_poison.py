"""Junk on the queue: a real worker sets it aside in `dogbreed.dead` and keeps running jobs; the
reaper reads past it. Anyone who can write the broker's Redis can push such an entry."""
import base64
import json
import pickle
import uuid

import pytest
import redis

from shared.redis_keys import DEAD_LETTERS, known_key
from tests.e2e.test_worker import finished, submit
from tests.helpers import images as make
from worker.reaper import Reaper

pytestmark = pytest.mark.slow

def envelope(queue: str, headers: dict, body: bytes, content_type: str = "application/json") -> bytes:
    """kombu's envelope around a body: the shape of a real message on the list."""
    return json.dumps({
        "body": base64.b64encode(body).decode(), "content-encoding": "utf-8", "content-type": content_type,
        "headers": headers, "properties": {"delivery_tag": str(uuid.uuid4()), "body_encoding": "base64",
                                           "delivery_info": {"exchange": "", "routing_key": queue}, "priority": 0},
    }).encode()


# Junk kombu cannot read: its envelope.
NOT_ENVELOPES = [
    b"not json at all",
    b"\xff\xfe\x00 binary",
    b"[1, 2, 3]",
    b'["a", "b", "c"]',
    b'{"no": "properties"}',
    b'{"body": "!!not base64!!", "properties": {"delivery_tag": "x", "body_encoding": "base64"}}',
    b'{"body": "e30=", "properties": ["not", "a", "dict"]}',
    b"42",
]


def not_tasks(queue: str) -> list[bytes]:
    """Envelopes Celery cannot make a task of."""
    return [
        envelope(queue, {"task": "dogbreed.classify", "id": "bad-body"}, b"not json"),
        envelope(queue, {"task": "dogbreed.classify", "id": "bad-shape"}, b'{"a": 1}'),
        envelope(queue, {"task": "dogbreed.classify"}, b'[["x"], {}, {}]'),  # no id
        envelope(queue, {"task": "no.such.task", "id": "unknown"}, b"[[], {}, {}]"),
        envelope(queue, {}, b"[1]"),  # no task name, and no protocol-1 body either
        envelope(queue, {"task": "dogbreed.classify", "id": "pickle"}, pickle.dumps([["x"], {}, {}]),
                 "application/x-python-serialize"),  # never unpickled: only JSON is accepted
    ]


def dead_entries(settings) -> list[dict]:
    raw = redis.Redis.from_url(settings.broker_url).lrange(DEAD_LETTERS, 0, -1)
    return [entry for entry in map(json.loads, raw) if entry["queue"] == settings.queue]


def original(entry: dict) -> object:
    """The entry as pushed, parsed when it is JSON (a message Celery read is set aside as kombu holds it)."""
    raw = entry["entry"].encode() if "entry" in entry else base64.b64decode(entry["entry_base64"])
    return comparable(raw)


def comparable(raw: bytes) -> object:
    try:
        return json.dumps(json.loads(raw), sort_keys=True)
    except ValueError:
        return repr(raw)


def test_junk_on_the_queue_is_set_aside_and_the_worker_keeps_working(settings, worker):
    client = redis.Redis.from_url(settings.broker_url)
    junks = NOT_ENVELOPES + not_tasks(settings.queue)
    for junk in junks:
        client.lpush(settings.queue, junk)  # how kombu publishes: LPUSH, consumed by BRPOP from the right
    from web.app import create_app

    app = create_app(settings)
    try:
        job_id = submit(app.test_client(), make.jpeg(160, 120, seed=3))
        job = finished(app.test_client(), job_id, timeout_s=90)
    finally:
        app.extensions["db_engine"].dispose()
    assert job["status"] == "succeeded", job
    assert worker.proc.poll() is None, worker.log()
    entries = dead_entries(settings)
    assert sorted(original(e) for e in entries) == sorted(map(comparable, junks)), entries
    assert all(e["reason"] for e in entries)
    assert client.llen(settings.queue) == 0
    assert "set aside" in worker.log_path.read_text(errors="replace")


def test_the_reaper_reads_past_junk_on_the_queue(settings):
    """No worker: the junk stays on the list, around a stale job's real message, while the reaper
    looks for messages: every round, the waiting job keeps its message and the lost one gets one."""
    from tests.worker.test_reaper_chunks import queued_jobs, send_chunk

    client = redis.Redis.from_url(settings.broker_url)
    waiting, lost = queued_jobs(settings, 2, queued_ago_s=3600), queued_jobs(settings, 1, queued_ago_s=3600)
    junks = NOT_ENVELOPES + not_tasks(settings.queue)
    for junk in junks[:7]:
        client.lpush(settings.queue, junk)
    send_chunk(settings, waiting)
    for junk in junks[7:]:
        client.lpush(settings.queue, junk)
    reaper = Reaper(settings.with_(job_deadline_s=60))
    assert reaper.run_once() == {"requeued": 1, "failed": 0, "webhooks": 0, "deadline_canceled": 0}
    assert reaper.resend_lost() == {"requeued": 0, "failed": 0}
    dead = f"dead-{settings.queue}@localhost"  # a dead node makes reap_orphans look for lost messages too
    client.sadd(known_key(settings.queue), dead)
    assert reaper.reap_orphans() == {"requeued": 0, "failed": 0}
    assert client.llen(settings.queue) == len(junks) + 2 and lost
