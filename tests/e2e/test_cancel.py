"""Cancel against a real worker: a canceled job's message is still delivered, and the job stays canceled."""
import io

import pytest

from tests.helpers import images as make
from tests.helpers.services import WorkerProcess, wait_for

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_worker_skips_canceled_jobs_and_runs_the_rest(client, settings, tmp_path):
    ids = []
    for i in range(6):
        response = client.post("/api/v1/jobs", data={"image": (io.BytesIO(make.jpeg(seed=i)), "d.jpg")},
                               content_type="multipart/form-data")
        ids.append(response.json["id"])
    canceled = ids[::2]
    for job_id in canceled:  # their messages stay queued in Redis
        assert client.delete(f"/api/v1/jobs/{job_id}").json["status"] == "canceled"
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    worker.start()
    try:
        def all_ended():
            jobs = [client.get(f"/api/v1/jobs/{job_id}").json for job_id in ids]
            return jobs if all(j["status"] in ("succeeded", "failed", "canceled") for j in jobs) else None

        ended = {j["id"]: j for j in wait_for(all_ended, 120, what="every job to end")}
    finally:
        worker.stop()  # every message handled by now: a late result would have been written
    for job_id in ids:
        job = client.get(f"/api/v1/jobs/{job_id}").json
        if job_id in canceled:
            assert job["status"] == "canceled" and job["result"] is None and job["attempts"] == 0, job
        else:
            assert ended[job_id]["status"] == "succeeded" and job["result"]["sentence"]


def test_canceled_jobs_inside_an_albums_chunk_get_no_result_and_the_rest_run(client, settings, tmp_path):
    response = client.post("/api/v1/batches", data={"image": [(io.BytesIO(make.jpeg(seed=i)), f"{i}.jpg")
                                                              for i in range(6)]},
                           content_type="multipart/form-data")
    assert response.status_code == 202, response.json
    album = response.json["url"]
    ids = [job["id"] for job in response.json["jobs"]]
    canceled = ids[1::2]  # inside the one chunk message, which stays queued in Redis
    for job_id in canceled:
        assert client.delete(f"/api/v1/jobs/{job_id}").json["status"] == "canceled"
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    worker.start()
    try:
        summary = wait_for(lambda: (s := client.get(album).json["summary"])["done"] and s, 120, what="the album to end")
    finally:
        worker.stop()  # the chunk was handled by now: a late result would have been written
    assert (summary["succeeded"], summary["canceled"], summary["failed"]) == (3, 3, 0)
    for job in client.get(album).json["jobs"]:
        if job["id"] in canceled:
            assert job["status"] == "canceled" and job["result"] is None and job["attempts"] == 0, job
        else:
            assert job["status"] == "succeeded" and job["result"]["sentence"] and job["attempts"] == 1, job
