"""A real Celery worker process, a real broker and database: jobs run to their end."""
import io

import pytest

from tests.helpers import images as make
from tests.helpers.services import WorkerProcess, wait_for

pytestmark = pytest.mark.slow


def submit(client, data: bytes, name: str = "photo.jpg") -> str:
    response = client.post("/api/v1/jobs", data={"image": (io.BytesIO(data), name)},
                           content_type="multipart/form-data")
    assert response.status_code == 202, response.json
    return response.json["id"]


def finished(client, job_id: str, timeout_s: float = 60) -> dict:
    def done():
        job = client.get(f"/api/v1/jobs/{job_id}").json
        return job if job["status"] in ("succeeded", "failed") else None

    return wait_for(done, timeout_s, what=f"job {job_id} to finish")


def test_jobs_run_to_success_with_a_full_result(client, worker):
    ids = [submit(client, make.jpeg(160, 120, seed=i)) for i in range(6)]
    for job_id in ids:
        job = finished(client, job_id)
        assert job["status"] == "succeeded", job
        result = job["result"]
        assert result["kind"] in ("dog", "human", "neither") and result["sentence"]
        assert result["model"]["backbone"] == "tiny" and result["model"]["head"] == "imagenet-dogs"
        assert job["attempts"] == 1 and job["started_at"] <= job["finished_at"]
    page = client.get(f"/jobs/{ids[0]}")
    assert page.status_code == 200 and b"job.js" in page.data


def test_a_human_photo_gets_face_boxes_and_a_resembling_breed(client, worker, real_data):
    photo = sorted((real_data / "humans").glob("deepface__*"))[0]
    job = finished(client, submit(client, photo.read_bytes(), photo.name))
    result = job["result"]
    assert job["status"] == "succeeded" and result["faces"], result
    box = result["faces"][0]
    assert 0 <= box["x"] < job["image"]["width"] and 0 < box["w"] <= job["image"]["width"]
    if result["kind"] == "human":
        assert len(result["breeds"]) == 5 and "dog" in result["sentence"]


def test_an_image_gone_from_storage_fails_with_a_reason(client, app, worker):
    from shared.celeryconf import TASK_CLASSIFY
    from tests.factories import make_job
    from web.database import db
    from web.queue import enqueue

    with app.app_context():  # a row whose image was deleted (expired) before the worker got to it
        job_id = make_job(db(), sha256="0" * 64).id
        db().commit()
        enqueue(TASK_CLASSIFY, job_id)
    job = finished(client, job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "image_missing"
    assert "upload it again" in job["error"]["message"]


def test_missing_weights_fail_each_job_naming_the_setting(settings, client, tmp_path):
    broken = settings.with_(backbone="mobilenet_v2", backbone_weights=str(tmp_path / "missing.keras"))
    proc = WorkerProcess(broken, tmp_path / "broken-worker.log")
    proc.start()
    try:
        job = finished(client, submit(client, make.jpeg()))
    finally:
        proc.stop()
    assert job["status"] == "failed" and job["error"]["code"] == "model_unavailable"
    assert "DOGBREED_BACKBONE_WEIGHTS" in job["error"]["message"]
    page = client.get(job["page_url"])
    assert b"failed" in page.data


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_embedded_broker_runs_jobs_end_to_end(make_settings, queue_name, tmp_path):
    """A machine with no Redis at all: `dogbreed up` falls back to fakeredis; jobs still finish."""
    from cli.broker import start_embedded
    from web.app import create_app

    server, port = start_embedded()
    settings = make_settings(broker_url=f"redis://127.0.0.1:{port}/0", queue=queue_name)
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    try:
        worker.start()
        client = create_app(settings).test_client()
        jobs = [finished(client, submit(client, make.jpeg(seed=i))) for i in range(3)]
        assert [j["status"] for j in jobs] == ["succeeded"] * 3
    finally:
        worker.stop()
        server.shutdown()
        server.server_close()


def submit_album(client, datas: list[bytes]) -> list[str]:
    response = client.post("/api/v1/batches", data={"image": [(io.BytesIO(d), f"{i}.jpg") for i, d in enumerate(datas)]},
                           content_type="multipart/form-data")
    assert response.status_code == 202, response.json
    return [job["id"] for job in response.json["jobs"]]


def test_an_albums_chunk_shares_one_forward_pass(make_settings, redis_url, queue_name, client, tmp_path):
    """One chunk, one thread: its images must all be in the batch before any answer is awaited.
    A long batch delay, so only the chunk's own images (not a timer) decide when the batch closes."""
    settings = make_settings(broker_url=redis_url, queue=queue_name, max_batch=4, max_batch_delay_ms=30000)
    ids = submit_album(client, [make.jpeg(200, 150, seed=i) for i in range(4)])
    proc = WorkerProcess(settings, tmp_path / "worker.log")
    proc.start()
    try:
        done = [finished(client, job_id, timeout_s=90) for job_id in ids]
    finally:
        proc.stop()
    assert [job["status"] for job in done] == ["succeeded"] * 4, [job["error"] for job in done]
    assert [job["result"]["batch_size"] for job in done] == [4] * 4
    assert [job["attempts"] for job in done] == [1] * 4
