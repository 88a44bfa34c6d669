"""Issue 18 items 15 and 6: one job per key even at once and with accounts off; albums take an
Idempotency-Key; replays and 409s cost no decode; the rate limit counts images."""
import concurrent.futures as cf

import pytest

from shared import images
from tests.helpers import images as make
from tests.web.test_albums import post_album
from tests.web.test_api import job_rows, upload


def test_concurrent_same_key_submits_make_one_job_with_accounts_off(client, app):
    assert not app.config["SETTINGS"].auth_required  # owner_id NULL: no unique index holds the key
    data = make.jpeg(seed=3)
    with cf.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: upload(client, data, headers={"Idempotency-Key": "once"}), range(8)))
    assert sorted(a.status_code for a in answers) == [200] * 7 + [202], [a.status_code for a in answers]
    assert len({a.json["id"] for a in answers}) == 1 and len(job_rows(app)) == 1


def album_files(*seeds: int) -> list[tuple[bytes, str]]:
    return [(make.jpeg(seed=seed), f"{seed}.jpg") for seed in seeds]


def test_an_album_takes_an_idempotency_key(client, app):
    key = {"Idempotency-Key": "album-1"}
    first = post_album(client, album_files(1, 2, 3), headers=key)
    again = post_album(client, album_files(1, 2, 3), headers=key)
    assert first.status_code == 202 and again.status_code == 200
    assert again.json["id"] == first.json["id"] and [j["id"] for j in again.json["jobs"]] == [j["id"] for j in first.json["jobs"]]
    assert len(job_rows(app)) == 3
    other = post_album(client, album_files(1, 2, 4), headers=key)
    assert other.status_code == 409 and other.json["error"]["code"] == "idempotency_key_reused"
    single = upload(client, make.jpeg(seed=1), headers=key)  # an album's key names no single job
    assert single.status_code == 409 and single.json["error"]["code"] == "idempotency_key_reused"
    assert len(job_rows(app)) == 3


def test_concurrent_same_key_albums_make_one_album(client, app):
    files = album_files(5, 6)
    with cf.ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: post_album(client, files, headers={"Idempotency-Key": "a"}), range(6)))
    assert sorted(a.status_code for a in answers) == [200] * 5 + [202]
    assert len({a.json["id"] for a in answers}) == 1 and len(job_rows(app)) == 2


@pytest.fixture
def decodes(monkeypatch) -> list[int]:
    """Counts the image checks' decodes (a spy around the real one)."""
    calls: list[int] = []
    real = images.inspect
    monkeypatch.setattr(images, "inspect", lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


def test_replays_and_reused_keys_are_answered_before_any_decode(client, decodes):
    data = make.jpeg(seed=8)
    assert upload(client, data, headers={"Idempotency-Key": "k"}).status_code == 202
    assert len(decodes) == 1
    assert upload(client, data, headers={"Idempotency-Key": "k"}).status_code == 200
    clash = upload(client, b"not an image at all", headers={"Idempotency-Key": "k"})  # 409, not 415
    assert clash.status_code == 409 and clash.json["error"]["code"] == "idempotency_key_reused"
    assert post_album(client, album_files(1, 2), headers={"Idempotency-Key": "al"}).status_code == 202
    assert len(decodes) == 3
    assert post_album(client, album_files(1, 2), headers={"Idempotency-Key": "al"}).status_code == 200
    assert len(decodes) == 3


def test_the_rate_limit_counts_images_not_requests(make_settings, redis_url, queue_name):
    from web.app import create_app

    client = create_app(make_settings(broker_url=redis_url, queue=queue_name, rate_limit_per_minute=3)).test_client()
    too_big = post_album(client, album_files(1, 2, 3, 4))
    assert too_big.status_code == 429 and too_big.json["error"]["code"] == "rate_limited"
    assert "albums of at most 3" in too_big.json["error"]["message"]
    assert post_album(client, album_files(1, 2, 3)).status_code == 202
    assert upload(client, make.jpeg(seed=9)).status_code == 429
