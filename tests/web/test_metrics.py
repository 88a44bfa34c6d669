"""/metrics as Prometheus scrapes it: the web's (guarded like Flower) and each worker's; values move as jobs run."""
from __future__ import annotations

import base64
import io
import os
import subprocess
import sys

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from cli.broker import free_port
from tests.helpers import images as make
from tests.helpers.services import ROOT, settings_env, wait_for


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value}"""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(found: dict, name: str, **labels) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def database_url(sqlite_url) -> str:
    """SQLite only: what is under test here is the metrics, not the database."""
    return sqlite_url


@pytest.fixture
def settings(make_settings, redis_url, queue_name):
    return make_settings(broker_url=redis_url, queue=queue_name, metrics_port=free_port())


def test_metrics_answer_loopback_clients_only_without_a_password(client):
    answer = client.get("/metrics")
    assert answer.status_code == 200 and answer.mimetype == "text/plain"
    names = {f.name for f in text_string_to_metric_families(answer.get_data(as_text=True))}
    assert {"dogbreed_jobs_submitted", "dogbreed_jobs_finished", "dogbreed_job_seconds", "dogbreed_queue_depth",
            "dogbreed_http_requests"} <= names
    remote = client.get("/metrics", environ_base={"REMOTE_ADDR": "10.20.30.40"})
    assert remote.status_code == 403 and "DOGBREED_METRICS_USER" in remote.get_json()["error"]["message"]


def test_without_the_broker_metrics_still_answer(settings):
    from web.app import create_app

    app = create_app(settings.with_(broker_url=f"redis://127.0.0.1:{free_port()}/0"))
    answer = app.test_client().get("/metrics")
    assert answer.status_code == 200 and "dogbreed_http_requests_total" in answer.get_data(as_text=True)
    assert "dogbreed_queue_depth" not in answer.get_data(as_text=True)
    app.extensions["db_engine"].dispose()


def test_with_a_password_metrics_need_basic_auth(settings):
    from web.app import create_app

    app = create_app(settings.with_(metrics_user="prom", metrics_password="s3cret"))
    client = app.test_client()
    far = {"REMOTE_ADDR": "10.20.30.40"}
    refused = client.get("/metrics", environ_base=far)
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Basic")
    wrong = base64.b64encode(b"prom:nope").decode()
    assert client.get("/metrics", environ_base=far, headers={"Authorization": f"Basic {wrong}"}).status_code == 401
    right = base64.b64encode(b"prom:s3cret").decode()
    assert client.get("/metrics", environ_base=far, headers={"Authorization": f"Basic {right}"}).status_code == 200
    app.extensions["db_engine"].dispose()


@pytest.mark.slow
def test_values_move_when_jobs_run(client, worker, settings):
    before = samples(client.get("/metrics").get_data(as_text=True))
    ids = []
    for i in range(3):
        answer = client.post("/api/v1/jobs", data={"image": (io.BytesIO(make.jpeg(120, 90, seed=i)), "a.jpg")},
                             content_type="multipart/form-data")
        assert answer.status_code == 202
        ids.append(answer.get_json()["id"])
    for job_id in ids:
        wait_for(lambda job_id=job_id: client.get(f"/api/v1/jobs/{job_id}").get_json()["status"] == "succeeded", 90,
                 what=f"job {job_id}")
    after = samples(client.get("/metrics").get_data(as_text=True))
    assert value(after, "dogbreed_jobs_submitted_total") - value(before, "dogbreed_jobs_submitted_total") == 3
    assert value(after, "dogbreed_http_requests_total", route="/api/v1/jobs", code="202") \
        - value(before, "dogbreed_http_requests_total", route="/api/v1/jobs", code="202") == 3
    finished = sum(v for (name, labels), v in after.items()
                   if name == "dogbreed_jobs_finished_total" and ("status", "succeeded") in labels)
    assert finished == 3, "this test's queue: exactly its own three jobs"
    assert value(after, "dogbreed_job_seconds_count") == 3 and value(after, "dogbreed_job_seconds_sum") > 0
    assert value(after, "dogbreed_job_seconds_bucket", le="+Inf") == 3
    assert value(after, "dogbreed_queue_depth") == 0

    worker_text = requests.get(f"http://127.0.0.1:{settings.metrics_port}/metrics", timeout=5).text
    found = samples(worker_text)
    assert value(found, "dogbreed_inference_images_total") >= 3
    assert value(found, "dogbreed_batch_size_count") >= 1 and value(found, "dogbreed_batch_size_sum") >= 3
    for stage in ("decode", "queue", "model", "faces", "write"):
        assert value(found, "dogbreed_stage_seconds_count", stage=stage) >= 1, stage
    assert 0.0 < value(found, "dogbreed_worker_busy_ratio") <= 1.0


@pytest.mark.slow
def test_gunicorn_workers_counts_add_up(settings, tmp_path):
    """`dogbreed web` runs two gunicorn processes; whichever answers a scrape reports both's requests."""
    port = free_port()
    env = {**os.environ, **settings_env(settings.with_(port=port, var_dir=tmp_path / "var")), "PYTHONPATH": str(ROOT)}
    log = open(tmp_path / "web.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "web", "--workers", "2"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        def up():
            try:
                return requests.get(f"{url}/healthz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_for(up, 60, 0.3, "gunicorn to answer")
        base = value(samples(requests.get(f"{url}/metrics", timeout=5).text), "dogbreed_http_requests_total",
                     route="/healthz", code="200")
        with requests.Session() as session:
            for _ in range(20):
                assert session.get(f"{url}/healthz", timeout=5).status_code == 200
        counts = [value(samples(requests.get(f"{url}/metrics", timeout=5).text), "dogbreed_http_requests_total",
                        route="/healthz", code="200") for _ in range(4)]
        assert counts == [base + 20] * 4, (base, counts)
        assert list((tmp_path / "var" / "metrics" / "web").glob("*.db")), "multiprocess files under var/"
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
