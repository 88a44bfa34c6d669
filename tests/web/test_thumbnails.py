"""Thumbnails: made when an upload is stored, kept beside it (folder and moto's real S3 server), served at
/jobs/<id>/thumbnail (made on demand for images stored before thumbnails existed), removed by gc."""
from __future__ import annotations

import io
import time

import pytest
from PIL import Image
from sqlalchemy import update

from shared.db import session_scope
from shared.storage import open_image_store
from shared.stored import THUMBNAIL_EXTENSION
from shared.tables import Job
from tests.factories import ago
from tests.helpers import images as make
from tests.web.test_api import upload
from worker.retention import expire


@pytest.fixture
def database_url(sqlite_url) -> str:
    """SQLite only: what is under test is the store and the pages, not the database."""
    return sqlite_url


@pytest.fixture(params=["folder", "s3"])
def store_settings(request, settings):
    return settings if request.param == "folder" else request.getfixturevalue("s3_settings")


@pytest.fixture
def thumbed(store_settings):
    from web.app import create_app

    app = create_app(store_settings)
    yield app, open_image_store(store_settings)
    app.extensions["db_engine"].dispose()


def thumbnail(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    assert img.format == "JPEG"
    return img


def test_an_upload_gets_a_small_jpeg_beside_it_served_at_thumbnail_url(thumbed):
    app, store = thumbed
    client = app.test_client()
    original = make.jpeg(1200, 800)
    job = upload(client, original).json
    sha = job["image"]["sha256"]
    assert store.exists(sha, "jpg") and store.exists(sha, THUMBNAIL_EXTENSION)
    assert job["thumbnail_url"].endswith(f"/jobs/{job['id']}/thumbnail")
    got = client.get(job["thumbnail_url"])
    assert got.status_code == 200 and got.mimetype == "image/jpeg"
    assert got.headers["X-Content-Type-Options"] == "nosniff" and "sandbox" in got.headers["Content-Security-Policy"]
    assert thumbnail(got.data).size == (256, 171) and len(got.data) < len(original) / 5


def test_thumbnails_are_upright_and_heic_gets_one_a_browser_can_show(thumbed):
    app, _ = thumbed
    client = app.test_client()
    rotated = upload(client, make.exif_rotated_jpeg(width=400, height=200, orientation=6)).json
    assert thumbnail(client.get(rotated["thumbnail_url"]).data).size == (128, 256)  # portrait, as a viewer shows it
    heic = upload(client, make.heic(320, 200), "IMG_0001.HEIC").json
    assert heic["image"]["format"] == "HEIF"
    assert thumbnail(client.get(heic["thumbnail_url"]).data).size == (256, 160)


def test_an_image_stored_before_thumbnails_gets_one_on_its_first_request(thumbed):
    app, store = thumbed
    client = app.test_client()
    job = upload(client, make.png(600, 300)).json
    sha = job["image"]["sha256"]
    store.delete(sha, THUMBNAIL_EXTENSION)  # as if stored by an older release
    got = client.get(job["thumbnail_url"])
    assert got.status_code == 200 and thumbnail(got.data).size == (256, 128)
    assert store.exists(sha, THUMBNAIL_EXTENSION), "made once, then kept"
    store.delete(sha, THUMBNAIL_EXTENSION)
    store.delete(sha, "png")
    gone = client.get(job["thumbnail_url"])
    assert gone.status_code == 404 and b"expired" in gone.data


def test_gc_removes_the_thumbnail_with_its_image(thumbed, sessions):
    app, store = thumbed
    data = make.png(300, 200, seed=21)
    job = upload(app.test_client(), data).json
    sha = job["image"]["sha256"]
    with session_scope(sessions) as session:  # the job ended 40 days ago
        session.execute(update(Job).where(Job.id == job["id"]).values(status="succeeded", created_at=ago(days=40)))
    time.sleep(2.1)  # S3's LastModified counts whole seconds; gc keeps a second of margin
    with session_scope(sessions) as session:
        gone = expire(session, store, 30, grace_s=1)
    assert gone.images == 1
    assert not store.exists(sha, "png") and not store.exists(sha, THUMBNAIL_EXTENSION)
