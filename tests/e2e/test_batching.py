"""Dynamic batching in a real worker: jobs share forward passes, answers do not depend on the batch,
and one bad image in a batch fails alone."""
import concurrent.futures as cf

import pytest

from shared.celeryconf import TASK_CLASSIFY
from shared.storage import FolderImageStore
from tests.e2e.test_worker import finished, submit
from tests.factories import make_job
from tests.helpers import images as make
from tests.helpers.services import WorkerProcess

pytestmark = pytest.mark.slow


@pytest.fixture
def settings(make_settings, redis_url, queue_name):
    return make_settings(broker_url=redis_url, queue=queue_name, max_batch=8, max_batch_delay_ms=300)


def submit_all(client, datas: list[bytes]) -> list[str]:
    with cf.ThreadPoolExecutor(8) as pool:  # the Flask test client is thread-safe per request
        return list(pool.map(lambda d: submit(client, d), datas))


def test_batched_answers_equal_one_at_a_time_answers(client, settings, tmp_path):
    datas = [make.jpeg(150 + 7 * i, 110, seed=i) for i in range(8)]
    queued = submit_all(client, datas)  # all waiting before the worker starts: it takes them together
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    try:
        worker.start()
        batched = [finished(client, j) for j in queued]
        single = [finished(client, submit(client, d)) for d in datas]  # each alone: a batch of one
    finally:
        worker.stop()
    assert max(j["result"]["batch_size"] for j in batched) > 1, "concurrent jobs should share a forward pass"
    assert all(j["result"]["batch_size"] == 1 for j in single)
    for b, s in zip(batched, single):
        assert b["status"] == s["status"] == "succeeded"
        assert b["result"]["kind"] == s["result"]["kind"]
        assert b["result"]["dog_score"] == pytest.approx(s["result"]["dog_score"], abs=1e-4)
        assert [x["label"] for x in b["result"]["imagenet_top"]] == [x["label"] for x in s["result"]["imagenet_top"]]


def test_an_undecodable_image_fails_alone_while_its_batch_succeeds(client, app, worker, settings):
    from web.database import db
    from web.queue import enqueue

    garbage = make.truncated(make.jpeg(300, 200, seed=42), 0.3)
    sha, _ = FolderImageStore(settings.storage_dir).store(garbage, "jpg")[:2]  # damaged on disk after upload
    with app.app_context():
        bad = make_job(db(), sha256=sha, size=len(garbage), fmt="JPEG", width=300, height=200,
                       filename="damaged.jpg").id
        db().commit()
    good = submit_all(client, [make.jpeg(120, 90, seed=100 + i) for i in range(6)])
    with app.app_context():
        enqueue(TASK_CLASSIFY, bad)
    bad_job = finished(client, bad)
    assert bad_job["status"] == "failed" and bad_job["error"]["code"] == "corrupt_image"
    assert "truncated" in bad_job["error"]["message"] or "decoded" in bad_job["error"]["message"]
    assert all(finished(client, j)["status"] == "succeeded" for j in good)
