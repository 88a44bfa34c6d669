"""Webhooks end to end: a real worker delivers to a real receiver, which checks each signature."""
import io

import pytest

from tests.factories import make_job
from tests.helpers import images as make
from tests.helpers.services import wait_for

pytestmark = pytest.mark.slow
@pytest.fixture
def settings(webhook_settings):
    return webhook_settings


def submit(client, callback_url: str, seed: int = 0) -> str:
    response = client.post("/api/v1/jobs", data={"image": (io.BytesIO(make.jpeg(seed=seed)), "dog.jpg"),
                                                 "callback_url": callback_url}, content_type="multipart/form-data")
    assert response.status_code == 202, response.json
    return response.json["id"]


def webhook_settled(client, job_id: str) -> dict:
    def settled():
        job = client.get(f"/api/v1/jobs/{job_id}").json
        return job if job["webhook"]["status"] != "pending" else None

    return wait_for(settled, 90, what=f"job {job_id}'s webhook to settle")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_finished_job_is_posted_signed_and_retried_after_a_500(client, worker, receiver):
    receiver.answers = [500]  # the receiver is down for the first attempt
    job_id = submit(client, receiver.url)
    job = webhook_settled(client, job_id)
    assert job["status"] == "succeeded"
    assert job["webhook"] == {"url": receiver.url, "status": "delivered", "attempts": 2, "last_error": None}
    assert len(receiver.deliveries) == 2 and all(d.verified and d.standard for d in receiver.deliveries)
    assert receiver.deliveries[0].msg_id == receiver.deliveries[1].msg_id  # a retry is the same message
    sent = receiver.deliveries[-1].job
    assert sent["id"] == job_id and sent["status"] == "succeeded" and sent["result"] == job["result"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_receiver_that_keeps_failing_is_given_up_with_the_reason(client, worker, receiver):
    receiver.answers = [503, 503, 503]
    job = webhook_settled(client, submit(client, receiver.url))
    assert job["webhook"]["status"] == "failed" and job["webhook"]["attempts"] == 3
    assert job["webhook"]["last_error"].startswith("HTTP 503")
    assert len(receiver.deliveries) == 3


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_canceled_job_is_announced_too(client, app, worker, receiver):
    from web.database import db

    with app.app_context():  # a queued job no worker has taken: its row only
        job_id = make_job(db(), callback_url=receiver.url).id
        db().commit()
    assert client.delete(f"/api/v1/jobs/{job_id}").status_code == 200
    job = webhook_settled(client, job_id)
    assert job["webhook"]["status"] == "delivered" and receiver.deliveries[0].verified
    assert receiver.deliveries[0].job["status"] == "canceled"
