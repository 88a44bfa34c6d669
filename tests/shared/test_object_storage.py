"""Images and published models in an S3 bucket (moto's real S3-protocol server), the same API as the folder."""
from __future__ import annotations

import io
import json
import os
import time

import pytest

from shared import jobs
from shared.db import session_scope
from shared.s3 import ModelDownloadError, S3ModelStore, make_client, split_url
from shared.storage import FolderImageStore, open_image_store
from shared.tables import Job
from tests.factories import ago, database, make_job
from tests.helpers import images as make
from worker.retention import expire


@pytest.fixture
def database_url(sqlite_url) -> str:
    """SQLite only: what is under test here is the store, not the database."""
    return sqlite_url


@pytest.fixture(params=["folder", "s3"])
def store(request, settings):
    if request.param == "folder":
        return FolderImageStore(settings.storage_dir)
    return open_image_store(request.getfixturevalue("s3_settings"))


def test_the_folder_and_the_bucket_answer_alike(store):
    data = make.png(seed=7)
    sha, _ = store.store(data, "png")[:2]
    assert store.exists(sha, "png") and store.read(sha, "png") == data
    opened = store.open(sha, "png")
    with opened.stream:
        assert opened.stream.read() == data and opened.size == len(data)
    assert abs((jobs.utcnow() - store.stored_at(sha, "png")).total_seconds()) < 120
    assert store.store(data, "png")[0] == sha, "content-addressed: the same bytes, the same key"
    store.delete(sha, "png")
    assert not store.exists(sha, "png") and store.stored_at(sha, "png") is None
    with pytest.raises(FileNotFoundError):
        store.read(sha, "png")


def test_s3_keys_keep_the_content_addressed_layout(s3_settings):
    store = open_image_store(s3_settings)
    sha, key = store.store(make.jpeg(seed=3), "jpg")[:2]
    bucket, prefix = split_url(s3_settings.storage_url)
    assert key == f"dogbreed/images/{sha[:2]}/{sha}.jpg" and prefix == "dogbreed/"
    listed = make_client(s3_settings.s3_endpoint_url).list_objects_v2(Bucket=bucket)["Contents"]
    assert [o["Key"] for o in listed] == [key]


def test_upload_lands_in_the_bucket_and_the_image_route_streams_it(s3_settings, tmp_path):
    from web.app import create_app

    app = create_app(s3_settings)
    client = app.test_client()
    data = make.jpeg(120, 80, seed=5)
    answer = client.post("/api/v1/jobs", data={"image": (io.BytesIO(data), "dog.jpg")},
                         content_type="multipart/form-data")
    assert answer.status_code == 202, answer.get_json()
    image = client.get(f"/jobs/{answer.get_json()['id']}/image")
    assert image.status_code == 200 and image.data == data
    assert image.headers["Content-Type"] == "image/jpeg" and image.headers["X-Content-Type-Options"] == "nosniff"
    assert image.headers["Content-Security-Policy"] == "default-src 'none'; sandbox; frame-ancestors 'none'"
    assert image.headers["Content-Length"] == str(len(data)) and image.headers["ETag"]
    again = client.get(f"/jobs/{answer.get_json()['id']}/image", headers={"If-None-Match": image.headers["ETag"]})
    assert again.status_code == 304
    assert [p for p in tmp_path.rglob("*") if p.suffix in (".jpg", ".jpeg")] == [], "no image file on this host"
    open_image_store(s3_settings).delete(*_image_of(s3_settings, answer.get_json()["id"]))
    gone = client.get(f"/jobs/{answer.get_json()['id']}/image", headers={"Accept": "application/json"})
    assert gone.status_code == 404 and gone.get_json()["error"]["code"] == "image_gone"
    app.extensions["db_engine"].dispose()


def _image_of(settings, job_id: str) -> tuple[str, str]:
    with database(settings.database_url) as session:
        return session.get(Job, job_id).image_sha256, "jpg"


def _old_job(sessions, store, data: bytes, days: int = 40) -> str:
    sha, _ = store.store(data, "png")[:2]
    with session_scope(sessions) as s:
        make_job(s, sha256=sha, size=len(data), status="succeeded", created_at=ago(days=days))
    return sha


def test_gc_deletes_unused_objects_but_spares_one_stored_within_the_grace_period(s3_settings, sessions):
    store = open_image_store(s3_settings)
    lonely = _old_job(sessions, store, make.png(seed=11))
    reuploaded = _old_job(sessions, store, make.png(seed=12))
    with session_scope(sessions) as session:
        gone = expire(session, store, 30, grace_s=3600)  # both objects were PUT seconds ago: an upload may own them
    assert gone.jobs == 2 and store.exists(lonely, "png") and store.exists(reuploaded, "png")
    _old_job(sessions, store, make.png(seed=11))
    time.sleep(2.1)  # LastModified counts whole seconds, and gc keeps a second of margin for that
    store.store(make.png(seed=12), "png")  # a new upload of the same bytes, its row not committed yet
    with session_scope(sessions) as session:
        expire(session, store, 30, grace_s=1)
    assert not store.exists(lonely, "png")
    assert store.exists(reuploaded, "png"), "the PUT refreshed LastModified, so gc spared it"


def test_publish_uploads_a_version_and_a_worker_host_fetches_it_once(s3_settings, tmp_path, monkeypatch, capsys):
    from cli.main import main
    from tests.helpers.models import write_head_folder

    for key, value in s3_settings.with_(model_dir=tmp_path / "web-models").to_env().items():
        monkeypatch.setenv(key, value)
    folder = write_head_folder(tmp_path / "run")
    assert main(["models", "publish", str(folder), "--name", "v1"]) == 0
    bucket, prefix = split_url(s3_settings.storage_url)
    assert f"s3://{bucket}/{prefix}models/v1/" in capsys.readouterr().out
    remote = S3ModelStore(make_client(s3_settings.s3_endpoint_url), bucket, prefix)
    manifest = remote.manifest("v1")
    assert set(manifest["files"]) == {"head.keras", "labels.json", "card.json"}

    worker_models = tmp_path / "worker-models"  # another host: nothing of the web's folder
    fetched = remote.fetch("v1", worker_models)
    assert fetched == worker_models / "v1" and json.loads((fetched / "labels.json").read_text())
    stamp = os.stat(fetched / "head.keras").st_mtime_ns
    assert remote.fetch("v1", worker_models) == fetched and os.stat(fetched / "head.keras").st_mtime_ns == stamp

    make_client(s3_settings.s3_endpoint_url).put_object(Bucket=bucket, Key=f"{prefix}models/v1/labels.json",
                                                       Body=b'["tampered"]')
    with pytest.raises(ModelDownloadError, match="sha256"):
        remote.fetch("v1", tmp_path / "third-host")
    assert not (tmp_path / "third-host" / "v1").exists(), "nothing half-fetched"
    assert [p.name for p in (tmp_path / "third-host").iterdir()] == []


def test_a_worker_that_lacks_the_active_version_fetches_and_serves_it(s3_settings, tmp_path, monkeypatch):
    from cli.main import main
    from tests.helpers.models import write_head_folder
    from worker.maintenance import follow_active_version
    from worker.runtime import Runtime

    for key, value in s3_settings.with_(model_dir=tmp_path / "web-models").to_env().items():
        monkeypatch.setenv(key, value)
    assert main(["models", "publish", str(write_head_folder(tmp_path / "run")), "--name", "v2", "--activate"]) == 0
    runtime = Runtime(s3_settings.with_(model_dir=tmp_path / "worker-models"))
    runtime.setup()
    try:
        follow_active_version(runtime.holder, runtime.sessions)
        result = runtime.classify(make.rgb_array(80, 80), (80, 80))
        assert result.model["model_version"] == "v2"
        assert (tmp_path / "worker-models" / "v2" / "manifest.json").is_file()
    finally:
        runtime.close()
