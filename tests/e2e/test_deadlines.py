"""Cancel-After: a job not finished by its deadline ends `canceled` with error.code
`deadline_exceeded`, whether a worker finds it at claim time or the sweep gets it first; its webhook
goes out like any other end. Real Redis, real databases, a real worker, a real receiver."""
import io
from datetime import datetime, timedelta

import pytest

from shared import jobs
from shared.tables import utcnow
from tests.factories import ago, album_job_ids, database, make_album, make_job
from tests.helpers import images as make
from tests.helpers.receiver import Receiver
from tests.helpers.services import WorkerProcess, wait_for
from worker.reaper import Reaper

SECRET = "whsec-test-0123456789"


def post_job(client, headers=None, **data):
    return client.post("/api/v1/jobs", data={"image": (io.BytesIO(make.jpeg(seed=3)), "dog.jpg"), **data},
                       headers=headers or {}, content_type="multipart/form-data")


@pytest.mark.parametrize("value", ["0s", "25h", "86401s", "1d", "5 minutes", "-5m", "1.5h", ""])
def test_a_bad_cancel_after_is_a_400_naming_the_form(client, value):
    for path in ("/api/v1/jobs", "/api/v1/batches"):
        response = client.post(path, data={"image": (io.BytesIO(make.jpeg()), "a.jpg")},
                               headers={"Cancel-After": value}, content_type="multipart/form-data")
        assert response.status_code == 400, (path, value)
        assert response.json["error"]["code"] == "bad_cancel_after"
        assert "30s" in response.json["error"]["message"]


@pytest.mark.parametrize("value, seconds", [("30s", 30), ("5m", 300), ("2h", 7200), ("24h", 86400)])
def test_cancel_after_sets_the_deadline_shown_on_the_job(client, value, seconds):
    before = utcnow()
    body = post_job(client, {"Cancel-After": value}).json
    deadline = datetime.fromisoformat(body["cancel_after_at"].replace("Z", "+00:00"))
    assert before + timedelta(seconds=seconds) <= deadline <= utcnow() + timedelta(seconds=seconds)


def test_an_album_s_jobs_share_its_deadline(client):
    body = client.post("/api/v1/batches", data={"image": [(io.BytesIO(make.jpeg(seed=i)), f"{i}.jpg") for i in range(3)]},
                       headers={"Cancel-After": "5m"}, content_type="multipart/form-data").json
    assert len({job["cancel_after_at"] for job in body["jobs"]}) == 1 and body["jobs"][0]["cancel_after_at"]


def test_the_sweep_cancels_queued_and_running_jobs_past_their_deadline_and_no_others(client, settings):
    with database(settings.database_url) as s:
        late = make_job(s, cancel_after_at=ago(seconds=1)).id
        running = make_job(s, status="running", node="n@h", started_at=ago(seconds=5), cancel_after_at=ago(seconds=1)).id
        early = make_job(s, cancel_after_at=utcnow() + timedelta(hours=1)).id
        none = make_job(s).id
        done = make_job(s, status="succeeded", result={"kind": "neither"}, cancel_after_at=ago(seconds=1)).id
    assert Reaper(settings).run_once()["deadline_canceled"] == 2
    for job_id in (late, running):
        job = client.get(f"/api/v1/jobs/{job_id}").json
        assert job["status"] == "canceled" and job["error"]["code"] == "deadline_exceeded", job
    assert [client.get(f"/api/v1/jobs/{j}").json["status"] for j in (early, none, done)] == ["queued", "queued", "succeeded"]
    assert client.get(f"/api/v1/jobs/{none}").json["error"] is None


def test_a_worker_claiming_a_chunk_skips_the_jobs_past_their_deadline(settings, sessions):
    with database(settings.database_url) as s:
        album = make_album(s, ("a.jpg", "b.jpg", "c.jpg"))
        ids = album_job_ids(album)
        s.query(jobs.Job).filter(jobs.Job.id == ids[1]).update({"cancel_after_at": ago(seconds=1)})
    with sessions() as s:
        claimed = jobs.claim_chunk(s, ids, "n@h", max_attempts=3)
        s.commit()
        assert [c.id for c in claimed] == [ids[0], ids[2]]
        skipped = s.get(jobs.Job, ids[1])
        assert (skipped.status, skipped.error_code) == ("canceled", "deadline_exceeded")


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_a_job_its_worker_reaches_too_late_ends_canceled_and_its_webhook_says_so(make_settings, redis_url, queue_name,
                                                                                  tmp_path):
    from web.app import create_app

    settings = make_settings(broker_url=redis_url, queue=queue_name, webhook_secret=SECRET, webhook_allow_private=True,
                             webhook_backoff_s=1)
    app = create_app(settings)
    client = app.test_client()
    receiver = Receiver(SECRET)
    url = receiver.start()
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    try:
        job = post_job(client, {"Cancel-After": "1s"}, callback_url=url).json  # no worker yet: it waits
        wait_for(lambda: (jobs.iso(utcnow()) or "") > job["cancel_after_at"], 10, what="the deadline to pass")
        worker.start()
        ended = wait_for(lambda: (lambda j: j if j["webhook"]["status"] != "pending" else None)(
            client.get(f"/api/v1/jobs/{job['id']}").json), 90, what="the webhook")
        assert ended["status"] == "canceled" and ended["error"]["code"] == "deadline_exceeded"
        assert ended["result"] is None and ended["webhook"]["status"] == "delivered"
        [delivery] = receiver.deliveries
        assert delivery.verified and delivery.job["status"] == "canceled"
        assert delivery.job["error"]["code"] == "deadline_exceeded"
    finally:
        worker.stop()
        receiver.stop()
        app.extensions["db_engine"].dispose()
