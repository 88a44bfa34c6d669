"""The JSON API on a real database and a real Redis broker (no worker: messages stay queued)."""
import io
import json

import pytest
import redis

from shared.tables import Job
from tests.helpers import images as make


def upload(client, data: bytes, name: str = "photo.jpg", field: str = "image", **kwargs):
    return client.post("/api/v1/jobs", data={field: (io.BytesIO(data), name)}, content_type="multipart/form-data",
                       **kwargs)


def queued_messages(settings, lane: str | None = None) -> list[dict]:
    """The messages waiting in the broker: in one lane's list, or in every lane's (interactive first)."""
    from shared.celeryconf import lane_queue, lane_queues

    r = redis.Redis.from_url(settings.broker_url)
    lists = [lane_queue(settings, lane)] if lane else lane_queues(settings)
    return [json.loads(m) for name in lists for m in r.lrange(name, 0, -1)]


def stored_files(settings) -> list:
    return [p for p in settings.storage_dir.rglob("*") if p.is_file()] if settings.storage_dir.exists() else []


def job_rows(app) -> list[Job]:
    from web.database import db

    with app.app_context():
        return db().query(Job).all()


def test_submit_answers_202_writes_the_row_then_enqueues_only_the_id(client, app, settings):
    response = upload(client, make.jpeg(120, 80))
    assert response.status_code == 202, response.json
    body = response.json
    assert body["status"] == "queued" and body["url"].endswith(f"/api/v1/jobs/{body['id']}")
    assert response.headers["Location"] == body["url"]
    [row] = job_rows(app)
    assert (row.id, row.image_format, row.image_width, row.image_height) == (body["id"], "JPEG", 120, 80)
    assert row.enqueued_at is not None
    [message] = queued_messages(settings)
    assert message["headers"]["task"] == "dogbreed.classify"
    assert message["headers"]["id"] == body["id"], "in Flower, a job's task is found by the job's id"
    assert json.loads(__import__("base64").b64decode(message["body"]))[0] == [body["id"]]
    assert len(message["body"]) < 400  # the id, never the image bytes
    assert sorted(p.name.split(".", 1)[1] for p in stored_files(settings)) == ["jpg", "thumb.jpg"]  # and its thumbnail


def test_poll_shows_status_timestamps_and_image_facts(client):
    job_id = upload(client, make.png(64, 48)).json["id"]
    job = client.get(f"/api/v1/jobs/{job_id}").json
    assert job["status"] == "queued" and job["created_at"].endswith("Z") and job["finished_at"] is None
    assert job["image"]["format"] == "PNG" and (job["image"]["width"], job["image"]["height"]) == (64, 48)
    assert job["result"] is None and job["error"] is None
    assert client.get(job["image_url"]).status_code == 200


def test_same_image_twice_is_stored_once(client, settings):
    data = make.jpeg(seed=3)
    assert upload(client, data).status_code == 202 and upload(client, data).status_code == 202
    assert sorted(p.name.split(".", 1)[1] for p in stored_files(settings)) == ["jpg", "thumb.jpg"]  # and its thumbnail


@pytest.mark.parametrize("data, name, status, code", [
    (b"", "empty.jpg", 400, "empty_file"),
    (b"just some text", "notes.jpg", 415, "not_an_image"),
    (make.truncated(make.jpeg(300, 200)), "cut.jpg", 400, "corrupt_image"),
    (make.png_header_only(60_000, 60_000), "bomb.png", 413, "image_too_large"),
])
def test_bad_uploads_get_a_json_4xx_and_store_nothing(client, app, settings, data, name, status, code):
    response = upload(client, data, name)
    assert response.status_code == status
    assert response.json["error"]["code"] == code and response.json["error"]["message"]
    assert job_rows(app) == [] and stored_files(settings) == [] and queued_messages(settings) == []


def test_over_the_size_limit_is_413(make_settings, redis_url, queue_name):
    from web.app import create_app

    app = create_app(make_settings(broker_url=redis_url, queue=queue_name, max_upload_bytes=2048))
    response = upload(app.test_client(), make.jpeg(400, 400, seed=1) + b"\0" * 100_000)
    assert response.status_code == 413 and response.json["error"]["code"] == "file_too_large"


def test_wrong_field_and_missing_file_say_what_to_send(client):
    wrong = upload(client, make.jpeg(), field="file")
    assert wrong.status_code == 400 and "'image'" in wrong.json["error"]["message"]
    not_multipart = client.post("/api/v1/jobs", data=b"{}", content_type="text/plain")
    assert not_multipart.status_code == 415 and not_multipart.json["error"]["code"] == "not_multipart"
    assert "image_url" in not_multipart.json["error"]["message"]
    empty_json = client.post("/api/v1/jobs", data=b"{}", content_type="application/json")
    assert empty_json.status_code == 400 and empty_json.json["error"]["code"] == "missing_image"


def test_history_is_newest_first_and_paginated(client):
    ids = [upload(client, make.jpeg(seed=i)).json["id"] for i in range(5)]
    page1 = client.get("/api/v1/jobs?per_page=2").json
    page3 = client.get("/api/v1/jobs?per_page=2&page=3").json
    assert [j["id"] for j in page1["jobs"]] == ids[::-1][:2] and page1["total"] == 5 and page1["pages"] == 3
    assert [j["id"] for j in page3["jobs"]] == ids[:1] and page3["next"] is None
    assert client.get("/api/v1/jobs?page=0").status_code == 400


def test_unknown_job_is_a_json_404(client):
    response = client.get("/api/v1/jobs/nope")
    assert response.status_code == 404 and response.json["error"]["code"] == "job_not_found"


def test_health_and_readiness(client):
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json["checks"] == {"database": "ok", "broker": "ok"}
    assert ready.json["workers"]["alive"] == 0 and ready.json["workers"]["status"].startswith("none alive")


def test_readiness_says_a_worker_is_alive_while_its_heartbeat_lasts(client, settings):
    import redis

    from worker.heartbeat import Heartbeat

    beat = Heartbeat(redis.Redis.from_url(settings.broker_url), settings.queue, "w1@host", 30)
    beat.start()
    try:
        assert client.get("/readyz").json["workers"] == {"alive": 1, "status": "ok"}
    finally:
        beat.stop()
    assert client.get("/readyz").json["workers"]["alive"] == 0


def test_broker_down_means_503_and_no_job_left_behind(make_settings, queue_name):
    from cli.broker import free_port
    from web.app import create_app

    app = create_app(make_settings(broker_url=f"redis://127.0.0.1:{free_port()}/0", queue=queue_name))
    client = app.test_client()
    response = upload(client, make.jpeg())
    assert response.status_code == 503 and response.json["error"]["code"] == "queue_unavailable"
    assert response.headers["Retry-After"]
    assert job_rows(app) == []
    assert client.get("/readyz").status_code == 503
