"""Sync mode, long polls and event streams, on a real gunicorn (`dogbreed web`), real Redis pub/sub
and a real worker: waiters are woken by what the worker and cancel publish."""
from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.helpers.images import jpeg as jpeg_bytes
from tests.helpers.live import GunicornWeb as Web
from tests.helpers.services import wait_for


@pytest.fixture
def web(settings, tmp_path):
    server = Web(settings, tmp_path)
    yield server
    server.stop()


def events(response: requests.Response) -> list[tuple[str, dict]]:
    """The named events of a server-sent event stream, read to its end."""
    found, name = [], None
    for line in response.iter_lines(decode_unicode=True):
        if line.startswith("event: "):
            name = line[len("event: "):]
        elif line.startswith("data: ") and name:
            found.append((name, json.loads(line[len("data: "):])))
            name = None
    return found


def test_prefer_wait_answers_the_finished_job_in_one_call(web, worker):
    with web.session() as http:
        answer = http.post(f"{web.url}/api/v1/jobs", files={"image": ("dog.jpg", jpeg_bytes())},
                           headers={"Prefer": "wait=50"}, timeout=70)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Preference-Applied"] == "wait=50"
    assert answer.json()["status"] == "succeeded" and answer.json()["result"]["kind"]


def test_an_album_with_prefer_wait_comes_back_done(web, worker):
    files = [("image", (f"d{i}.jpg", jpeg_bytes(seed=i))) for i in range(3)]
    with web.session() as http:
        answer = http.post(f"{web.url}/api/v1/batches", files=files, headers={"Prefer": "wait"}, timeout=70)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Preference-Applied"] == "wait=60"
    assert answer.json()["summary"]["done"] and answer.json()["summary"]["succeeded"] == 3


def test_a_long_poll_is_woken_by_a_cancel(web):
    """No worker: the job stays queued until another request cancels it; the waiting GET answers then."""
    with web.session() as http:
        job = http.post(f"{web.url}/api/v1/jobs", files={"image": ("dog.jpg", jpeg_bytes())}, timeout=30).json()
    waited: list[requests.Response] = []
    waiter = threading.Thread(target=lambda: waited.append(
        web.session().get(f"{web.url}/api/v1/jobs/{job['id']}?wait=60", timeout=90)))
    waiter.start()
    stream = web.session().get(f"{web.url}/api/v1/jobs/{job['id']}/events", stream=True, timeout=90)
    with stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        lines = stream.iter_lines(decode_unicode=True)
        first = next(line for line in lines if line.startswith("data: "))  # the stream is open and has said "queued"
        assert json.loads(first[len("data: "):]) == {"id": job["id"], "status": "queued"}
        assert requests.delete(f"{web.url}/api/v1/jobs/{job['id']}", timeout=30).status_code == 200
        rest = events(stream)
    waiter.join(timeout=90)
    assert waited[0].status_code == 200 and waited[0].json()["status"] == "canceled"
    assert rest[-1][0] == "done" and rest[-1][1]["status"] == "canceled"
    assert ("status", {"id": job["id"], "status": "canceled"}) in rest


def test_streams_push_each_change_then_the_whole_job_and_album(web, worker):
    with web.session() as http:
        job = http.post(f"{web.url}/api/v1/jobs", files={"image": ("dog.jpg", jpeg_bytes())}, timeout=30).json()
        album = http.post(f"{web.url}/api/v1/batches", timeout=30,
                          files=[("image", (f"d{i}.jpg", jpeg_bytes(seed=i))) for i in range(2)]).json()
        with http.get(f"{web.url}/api/v1/jobs/{job['id']}/events", stream=True, timeout=90) as stream:
            job_events = events(stream)
        with http.get(f"{web.url}/api/v1/batches/{album['id']}/events", stream=True, timeout=90) as stream:
            album_events = events(stream)
    statuses = [data["status"] for name, data in job_events if name == "status"]
    assert statuses[-1] == "succeeded" and len(statuses) == len(set(statuses))  # one event per change
    assert job_events[-1][0] == "done" and job_events[-1][1]["result"]["kind"]
    assert album_events[-1][0] == "done" and album_events[-1][1]["summary"]["succeeded"] == 2
    assert all(name == "status" for name, _ in album_events[:-1])


def test_beyond_the_cap_sync_mode_answers_at_once_and_a_stream_is_refused(settings, tmp_path):
    server = Web(settings.with_(max_waiters=2), tmp_path)
    try:
        with server.session() as http:
            job = http.post(f"{server.url}/api/v1/jobs", files={"image": ("dog.jpg", jpeg_bytes())}, timeout=30).json()
        streams = [server.session().get(f"{server.url}/api/v1/jobs/{job['id']}/events", stream=True, timeout=90)
                   for _ in range(2)]
        for stream in streams:  # both slots taken: each stream has said "queued"
            assert stream.status_code == 200
            next(line for line in stream.iter_lines(decode_unicode=True) if line.startswith("data: "))
        with server.session() as http:
            refused = http.get(f"{server.url}/api/v1/jobs/{job['id']}/events", timeout=30)
            plain = http.post(f"{server.url}/api/v1/jobs", files={"image": ("cat.jpg", jpeg_bytes(seed=7))},
                              headers={"Prefer": "wait=60"}, timeout=30)
            polled = http.get(f"{server.url}/api/v1/jobs/{job['id']}?wait=60", timeout=30)
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "too_many_waiters"
        assert refused.headers["Retry-After"]
        assert plain.status_code == 202 and "Preference-Applied" not in plain.headers
        assert polled.status_code == 200 and polled.json()["status"] == "queued"
        for stream in streams:
            stream.close()
        # the slots come back once the streams close: a cancel ends a new stream at once
        with server.session() as http:
            assert http.delete(f"{server.url}/api/v1/jobs/{job['id']}", timeout=30).status_code == 200

            def streams_again() -> bool:
                return http.get(f"{server.url}/api/v1/jobs/{job['id']}/events", timeout=30).status_code == 200

            wait_for(streams_again, 30, 0.2, "a slot to come back")
    finally:
        server.stop()


def test_a_bad_wait_is_a_clear_400(web):
    with web.session() as http:
        job = http.post(f"{web.url}/api/v1/jobs", files={"image": ("dog.jpg", jpeg_bytes())}, timeout=30).json()
        bad_get = http.get(f"{web.url}/api/v1/jobs/{job['id']}?wait=soon", timeout=30)
        bad_prefer = http.post(f"{web.url}/api/v1/jobs", files={"image": ("dog.jpg", jpeg_bytes())},
                               headers={"Prefer": "wait=-3"}, timeout=30)
    assert bad_get.status_code == 400 and bad_get.json()["error"]["code"] == "bad_wait"
    assert bad_prefer.status_code == 400 and bad_prefer.json()["error"]["code"] == "bad_wait"


def test_many_long_polls_do_not_hold_the_threads_submits_need(settings, tmp_path):
    """30 waiters open on one process with 4 request threads: submits are still answered."""
    server = Web(settings.with_(max_waiters=30), tmp_path)
    try:
        with server.session() as http:
            job = http.post(f"{server.url}/api/v1/jobs", files={"image": ("dog.jpg", jpeg_bytes())}, timeout=30).json()
        with ThreadPoolExecutor(30) as pool:
            waits = [pool.submit(requests.get, f"{server.url}/api/v1/jobs/{job['id']}?wait=60", timeout=90)
                     for _ in range(30)]
            with server.session() as http:
                for i in range(5):
                    answer = http.post(f"{server.url}/api/v1/jobs", timeout=30,
                                       files={"image": ("dog.jpg", jpeg_bytes(seed=i + 1))})
                    assert answer.status_code == 202
                assert http.delete(f"{server.url}/api/v1/jobs/{job['id']}", timeout=30).status_code == 200
            assert {w.result().json()["status"] for w in waits} == {"canceled"}
    finally:
        server.stop()


def changes_seen(pubsub, job_id: str, until: str) -> list[str]:
    """The statuses published for a job, in order, until `until` (what a waiter is woken by)."""
    seen: list[str] = []
    deadline = time.monotonic() + 90  # a bound on the wait, not a figure under test
    while until not in seen:
        assert time.monotonic() < deadline, f"published for job {job_id}: {seen} only"
        message = pubsub.get_message(timeout=1)
        if message and message["type"] == "message":
            seen += [c["status"] for c in json.loads(message["data"])["changes"] if c["job"] == job_id]
    return seen


def test_the_worker_publishes_each_change_once_committed(web, worker, settings):
    import redis

    from shared.redis_keys import job_events_channel

    pubsub = redis.Redis.from_url(settings.broker_url).pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(job_events_channel(settings.queue))
    with web.session() as http:
        job = http.post(f"{web.url}/api/v1/jobs", files={"image": ("dog.jpg", jpeg_bytes())}, timeout=30).json()
        assert changes_seen(pubsub, job["id"], "succeeded") == ["running", "succeeded"]
        assert http.get(f"{web.url}/api/v1/jobs/{job['id']}", timeout=30).json()["status"] == "succeeded"
    pubsub.close()
