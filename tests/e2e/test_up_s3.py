"""`dogbreed up` with DOGBREED_STORAGE_URL=s3://... against a local S3 server: images live in the bucket,
none under var/, and `/metrics` moves as the jobs run."""
import os
import uuid

import pytest
import requests

from shared.s3 import make_client
from tests.e2e.test_up import Up, poll
from tests.helpers import images as make
from tests.helpers.s3 import CREDENTIALS, new_bucket
from tests.helpers.services import ROOT

pytestmark = pytest.mark.slow


def test_up_with_s3_keeps_no_image_under_var(tmp_path, redis_url, s3_endpoint):
    bucket = new_bucket(s3_endpoint)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOGBREED_")}
    env.update(CREDENTIALS, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="-1",
               DOGBREED_MAX_BATCH="4", DOGBREED_BROKER_URL=redis_url, DOGBREED_QUEUE=f"up-{uuid.uuid4().hex[:10]}",
               DOGBREED_BACKBONE="tiny", DOGBREED_BACKBONE_WEIGHTS="random",
               DOGBREED_STORAGE_URL=f"s3://{bucket}/up", DOGBREED_S3_ENDPOINT_URL=s3_endpoint)
    up = Up(tmp_path, env)
    try:
        up.wait_ready()
        assert f"images:     s3://{bucket}/up" in up.log()
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {(tmp_path / 'var' / 'local-api-key').read_text().strip()}"
        jobs = []
        for i in range(3):
            answer = api.post(f"{up.url}/api/v1/jobs", files={"image": (f"d{i}.jpg", make.jpeg(150, 100, seed=i))},
                              timeout=10)
            assert answer.status_code == 202, answer.text
            jobs.append(poll(api, answer.json()["url"]))
        assert [j["status"] for j in jobs] == ["succeeded"] * 3, jobs
        image = api.get(jobs[0]["image_url"], timeout=5)
        assert image.status_code == 200 and image.headers["X-Content-Type-Options"] == "nosniff"
        metrics = requests.get(f"{up.url}/metrics", timeout=5).text
        assert 'dogbreed_jobs_finished_total{kind="' in metrics and "dogbreed_jobs_submitted_total 3.0" in metrics
    finally:
        up.stop()
    keys = [o["Key"] for o in make_client(s3_endpoint).list_objects_v2(Bucket=bucket).get("Contents", [])]
    images = [k for k in keys if k.startswith("up/images/")]
    assert len(images) == 6 and len([k for k in images if k.endswith(".thumb.jpg")]) == 3  # each with its thumbnail
    on_disk = [p for p in (tmp_path / "var").rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")]
    assert on_disk == [], on_disk
