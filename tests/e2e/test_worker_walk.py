"""The worker walks a stored file's structure before decoding it, as the web does: a hostile file
that reached the store another way fails its job with too_complex, and the worker goes on."""
import pytest

from shared.celeryconf import TASK_CLASSIFY
from shared.storage import FolderImageStore
from tests.e2e.test_worker import finished, submit
from tests.factories import make_job
from tests.helpers import hostile
from tests.helpers import images as make

pytestmark = pytest.mark.slow


def test_a_stored_hostile_file_fails_too_complex_in_the_worker(client, app, worker, settings):
    from web.database import db
    from web.queue import enqueue

    bomb = hostile.png_chunks(5_000)  # the web would have refused it; stored as if before this check
    sha = FolderImageStore(settings.storage_dir).store(bomb, "png")[0]
    with app.app_context():
        bad = make_job(db(), sha256=sha, size=len(bomb), fmt="PNG", width=64, height=48, filename="bomb.png").id
        db().commit()
        enqueue(TASK_CLASSIFY, bad)
    job = finished(client, bad)
    assert job["status"] == "failed" and job["error"]["code"] == "too_complex"
    assert "chunks" in job["error"]["message"]
    assert finished(client, submit(client, make.jpeg(120, 90, seed=7)))["status"] == "succeeded"
