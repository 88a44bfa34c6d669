"""Deliveries run on the worker's own delivery pool: receivers that hang hold none of the task threads
a classify job needs, and a second copy of a delivery in flight (the reaper's, a redelivered
message) sends nothing. A real worker with 2 task threads, a real receiver that holds every POST."""
import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shared.celeryconf import TASK_WEBHOOK, make_celery, webhook_queue
from tests.e2e.test_webhooks import submit
from tests.helpers import images as make
from tests.helpers.receiver import SECRET
from tests.helpers.services import wait_for
from worker.reaper import Reaper

pytestmark = pytest.mark.slow


class HangingReceiver:
    """Takes each POST and answers 204 only once released; `events` is what happened, in order."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.events: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.events.append("posted")
                receiver.release.wait(120)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def settings(make_settings, redis_url, queue_name):
    # max_batch 1: 2 task threads, the worker the issue measured; a long attempt deadline, so a
    # delivery that held a task thread would hold it past the test's waits.
    return make_settings(broker_url=redis_url, queue=queue_name, webhook_secret=SECRET, webhook_allow_private=True,
                         webhook_timeout_s=100, max_batch=1)


@pytest.fixture
def receiver():
    found = HangingReceiver()
    yield found
    found.stop()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_job_finishes_while_two_deliveries_hang_and_no_second_copy_is_posted(client, settings, worker, receiver):
    hooked = [submit(client, receiver.url, seed=seed) for seed in (1, 2)]
    wait_for(lambda: receiver.events.count("posted") == 2, 90, what="both deliveries to be held by the receiver")

    job_id = submit_plain(client)
    job = wait_for(lambda: (j := client.get(f"/api/v1/jobs/{job_id}").json)["status"] == "succeeded" and j, 90,
                   what="a plain job to finish while both deliveries hang")
    receiver.events.append("plain job done")
    assert job["status"] == "succeeded"
    for hook_id in hooked:  # still in their first attempt: nothing was recorded, nothing answered
        assert client.get(f"/api/v1/jobs/{hook_id}").json["webhook"] == {
            "url": receiver.url, "status": "pending", "attempts": 0, "last_error": None}

    # A reaper round and a redelivered message while both attempts are in flight: no second POST.
    assert Reaper(settings.with_(job_deadline_s=0)).run_once()["webhooks"] == 0
    celery = make_celery(settings, name="test-redeliver")
    celery.send_task(TASK_WEBHOOK, args=[hooked[0]], queue=webhook_queue(settings))
    celery.close()
    wait_for(lambda: "this copy sends nothing" in worker.log(), 60, what="the second copy to stand down")

    receiver.release.set()
    for hook_id in hooked:
        wait_for(lambda hook_id=hook_id: client.get(f"/api/v1/jobs/{hook_id}").json["webhook"]["status"] == "delivered", 60,
                 what=f"job {hook_id}'s delivery to be recorded")
    assert receiver.events == ["posted", "posted", "plain job done"]


def submit_plain(client) -> str:
    response = client.post("/api/v1/jobs", data={"image": (io.BytesIO(make.jpeg(seed=3)), "dog.jpg")},
                           content_type="multipart/form-data")
    assert response.status_code == 202, response.json
    return response.json["id"]
