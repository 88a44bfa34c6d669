"""Issue 18's hostile uploads through the real Flask app: 400 too_complex from the structure walk
(before Pillow), nothing stored; every real photo still accepted; the decode budget's refusal."""
import io

import pytest

from tests.helpers import images as make
from tests.helpers.hostile import JUST_PAST_THE_LIMITS
from tests.helpers.services import REAL_DATA


@pytest.fixture
def settings(make_settings, redis_url, queue_name):
    return make_settings(broker_url=redis_url, queue=queue_name, rate_limit_per_minute=0)


def send(client, data: bytes, name: str = "upload.bin"):
    return client.post("/api/v1/jobs", data={"image": (io.BytesIO(data), name)}, content_type="multipart/form-data")


def stored(settings) -> int:
    return sum(1 for p in settings.storage_dir.rglob("*") if p.is_file()) if settings.storage_dir.exists() else 0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_hostile_structures_get_too_complex_and_leave_nothing(client, settings):
    for name, (build, _measure) in JUST_PAST_THE_LIMITS.items():
        response = send(client, build())
        assert response.status_code == 400, (name, response.json)
        assert response.json["error"]["code"] == "too_complex", name
        assert "no photo comes near" in response.json["error"]["message"], name
    assert stored(settings) == 0
    assert client.get("/api/v1/jobs").json["total"] == 0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.skipif(not REAL_DATA.is_dir(), reason=f"the team's real photos are not at {REAL_DATA}")
def test_every_real_photo_is_still_accepted(client):
    photos = sorted(p for p in REAL_DATA.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    assert len(photos) > 300
    for start in range(0, len(photos), 32):  # albums, to send them all in a few requests
        album = photos[start:start + 32]
        files = [(io.BytesIO(p.read_bytes()), p.name) for p in album]
        response = client.post("/api/v1/batches", data={"image": files}, content_type="multipart/form-data")
        assert response.status_code == 202, response.json
        refused = [(p.name, job["error"]) for p, job in zip(album, response.json["jobs"]) if "id" not in job]
        assert not refused


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_upload_over_the_decode_budget_is_refused_naming_the_setting(make_settings, redis_url, queue_name):
    from shared import images
    from web.app import create_app

    app = create_app(make_settings(broker_url=redis_url, queue=queue_name, decode_memory_mb=32))
    try:
        response = send(app.test_client(), make.flat_png(3000, 3000), "flat.png")  # ~52 MiB at its peak
        assert response.status_code == 413
        assert response.json["error"]["code"] == "image_too_large"
        assert "DOGBREED_DECODE_MEMORY_MB" in response.json["error"]["message"]
    finally:
        app.extensions["db_engine"].dispose()
        images.set_decode_memory_mb(images.DEFAULT_DECODE_MEMORY_MB)
