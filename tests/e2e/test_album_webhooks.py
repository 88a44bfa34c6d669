"""Webhooks per album and by event: an album's callback_url gets ONE delivery, the album's JSON,
when all its jobs ended; `webhook_events=started` adds one `started` delivery. A real worker
delivers to a real receiver, which checks each signature."""
import io

import pytest

from tests.helpers import images as make
from tests.helpers.services import WorkerProcess, wait_for


@pytest.fixture
def settings(webhook_settings):
    return webhook_settings


def post_album(client, n: int, headers=None, **data):
    return client.post("/api/v1/batches", data={"image": [(io.BytesIO(make.jpeg(seed=i)), f"{i}.jpg") for i in range(n)],
                                                **data}, headers=headers or {}, content_type="multipart/form-data")


def post_job(client, **data):
    return client.post("/api/v1/jobs", data={"image": (io.BytesIO(make.jpeg(seed=7)), "dog.jpg"), **data},
                       content_type="multipart/form-data")


def settled(client, path: str) -> dict:
    def done():
        body = client.get(path).json
        return body if body["webhook"]["status"] != "pending" else None

    return wait_for(done, 120, what=f"{path}'s webhook to settle")


def events(receiver) -> list[str]:
    return sorted(d.event for d in receiver.deliveries)


@pytest.mark.parametrize("value", ["finished", "completed,ended", "STARTED"])
def test_an_unknown_webhook_event_is_a_400(client, receiver, value):
    for response in (post_job(client, callback_url=receiver.url, webhook_events=value),
                     post_album(client, 1, callback_url=receiver.url, webhook_events=value)):
        assert response.status_code == 400 and response.json["error"]["code"] == "bad_webhook_events"


def test_webhook_events_without_a_callback_url_is_a_400(client):
    response = post_job(client, webhook_events="started")
    assert response.status_code == 400 and response.json["error"]["code"] == "bad_webhook_events"
    assert "callback_url" in response.json["error"]["message"]


def test_an_album_s_callback_is_the_album_s_not_its_jobs(client, receiver):
    body = post_album(client, 2, callback_url=receiver.url).json
    assert body["webhook"] == {"url": receiver.url, "status": "pending", "attempts": 0, "last_error": None}
    assert [job["webhook"] for job in body["jobs"]] == [None, None]


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_an_album_gets_one_delivery_when_all_its_jobs_ended(client, worker, receiver):
    album = post_album(client, 20, callback_url=receiver.url).json  # two chunks: two commits announce it
    ended = settled(client, f"/api/v1/batches/{album['id']}")
    assert ended["summary"]["done"] and ended["summary"]["succeeded"] == 20
    assert ended["webhook"] == {"url": receiver.url, "status": "delivered", "attempts": 1, "last_error": None}
    # a single job sent after it, with its own webhook: once that one is in, the album's had its chance to repeat
    settled(client, f"/api/v1/jobs/{post_job(client, callback_url=receiver.url).json['id']}")
    albums = [d for d in receiver.deliveries if "summary" in d.job]
    assert len(albums) == 1 and albums[0].verified and albums[0].event == "completed"
    sent = albums[0].job
    assert sent["id"] == album["id"] and sent["summary"] == ended["summary"]
    assert [job["status"] for job in sent["jobs"]] == ["succeeded"] * 20 and "url" not in sent


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_started_adds_one_delivery_when_the_work_begins(client, worker, receiver):
    job = post_job(client, callback_url=receiver.url, webhook_events="started").json
    settled(client, f"/api/v1/jobs/{job['id']}")
    wait_for(lambda: len(receiver.deliveries) >= 2, 60, what="the started delivery")
    assert events(receiver) == ["completed", "started"] and all(d.verified for d in receiver.deliveries)
    assert {d.job["id"] for d in receiver.deliveries} == {job["id"]}
    receiver.deliveries.clear()
    album = post_album(client, 3, callback_url=receiver.url, webhook_events="completed, started").json
    settled(client, f"/api/v1/batches/{album['id']}")
    wait_for(lambda: len(receiver.deliveries) >= 2, 60, what="the album's started delivery")
    assert events(receiver) == ["completed", "started"] and {d.job["id"] for d in receiver.deliveries} == {album["id"]}


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_album_past_its_deadline_is_announced_once_all_canceled(client, settings, receiver, tmp_path):
    from shared import jobs
    from shared.tables import utcnow

    album = post_album(client, 3, {"Cancel-After": "1s"}, callback_url=receiver.url).json  # no worker yet
    wait_for(lambda: (jobs.iso(utcnow()) or "") > album["jobs"][0]["cancel_after_at"], 10, what="the deadline")
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    worker.start()
    try:
        ended = settled(client, f"/api/v1/batches/{album['id']}")
    finally:
        worker.stop()
    assert ended["summary"]["canceled"] == 3 and ended["webhook"]["status"] == "delivered"
    [delivery] = receiver.deliveries
    assert {job["error"]["code"] for job in delivery.job["jobs"]} == {"deadline_exceeded"}


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_cancelling_an_album_s_last_job_announces_the_album(client, settings, receiver, tmp_path):
    album = post_album(client, 2, callback_url=receiver.url).json  # no worker: the cancels end it
    for job in album["jobs"]:
        assert client.delete(f"/api/v1/jobs/{job['id']}").status_code == 200
    worker = WorkerProcess(settings, tmp_path / "worker.log")  # delivers what the web announced
    worker.start()
    try:
        ended = settled(client, f"/api/v1/batches/{album['id']}")
    finally:
        worker.stop()
    assert ended["summary"]["canceled"] == 2 and ended["webhook"]["status"] == "delivered"
    [delivery] = receiver.deliveries
    assert delivery.event == "completed" and delivery.job["summary"]["done"]
