"""DOGBREED_LOG_FORMAT=json: one JSON object per line, joined across web and worker by job and request ids."""
from __future__ import annotations

import io
import json
import logging

import pytest

from shared import logs
from tests.helpers import images as make
from tests.helpers.services import wait_for


@pytest.fixture
def json_root(capsys):
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    yield
    root.handlers, root.level = saved[0], saved[1]


def test_each_record_is_one_json_line_with_job_request_and_node(settings, json_root, capsys):
    assert logs.configure(settings.with_(log_format="json"), "gpu0@box")
    with logs.job_context("job123", "req456"):
        logging.getLogger("dogbreed.test").info("hello %s", "world")
    logging.getLogger("dogbreed.test").warning("outside")
    lines = capsys.readouterr().out.strip().splitlines()
    first, second = (json.loads(line) for line in lines[-2:])
    assert first["message"] == "hello world" and first["level"] == "INFO"
    assert (first["job_id"], first["request_id"], first["node"]) == ("job123", "req456", "gpu0@box")
    assert second["job_id"] is None and second["node"] == "gpu0@box"


def test_the_request_id_is_the_callers_or_a_new_one(client):
    mine = client.get("/healthz", headers={"X-Request-Id": "trace-42"})
    assert mine.headers["X-Request-Id"] == "trace-42"
    made = client.get("/healthz").headers["X-Request-Id"]
    odd = client.get("/healthz", headers={"X-Request-Id": "bad id <script>" + "x" * 200}).headers["X-Request-Id"]
    assert len(made) == 32 and len(odd) == 32 and made != odd


@pytest.mark.slow
def test_the_job_id_and_request_id_reach_the_workers_json_logs(make_settings, redis_url, queue_name, tmp_path):
    from tests.helpers.services import WorkerProcess
    from web.app import create_app

    settings = make_settings(broker_url=redis_url, queue=queue_name, log_format="json")
    worker = WorkerProcess(settings, tmp_path / "worker.log", node=f"json-{queue_name}@lab")
    worker.start()
    app = create_app(settings.with_(log_format="text"))
    try:
        client = app.test_client()
        answer = client.post("/api/v1/jobs", data={"image": (io.BytesIO(make.jpeg(seed=3)), "a.jpg")},
                             content_type="multipart/form-data", headers={"X-Request-Id": "upload-7"})
        job_id = answer.get_json()["id"]
        wait_for(lambda: client.get(f"/api/v1/jobs/{job_id}").get_json()["status"] == "succeeded", 90, what="the job")

        def records():
            text = (tmp_path / "worker.log").read_text(errors="replace")
            found = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
            return [r for r in found if r["job_id"] == job_id] or None

        mine = wait_for(records, 20, what="the worker's log line for the job")
        assert all(r["request_id"] == "upload-7" and r["node"] == worker.node for r in mine), mine
    finally:
        worker.stop()
        app.extensions["db_engine"].dispose()
