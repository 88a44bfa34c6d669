"""Nobody where they don't belong: keys, sessions, CSRF, per-user jobs, limits."""
import io
import re

import pytest
from sqlalchemy import select

from shared import accounts
from shared.db import make_engine, make_sessionmaker, session_scope
from shared.tables import ApiKey
from tests.helpers import images as make


@pytest.fixture
def settings(make_settings, redis_url, queue_name):
    return make_settings(broker_url=redis_url, queue=queue_name, auth_required=True)


@pytest.fixture
def people(settings):
    """Users a and b, an admin, and one API key each."""
    engine = make_engine(settings.database_url)
    keys = {}
    with session_scope(make_sessionmaker(engine)) as session:
        for name, admin in (("a", False), ("b", False), ("root", True)):
            user = accounts.create_user(session, name, password=f"{name}-password", is_admin=admin)
            keys[name] = accounts.create_key(session, user)
    engine.dispose()
    return keys


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def upload(client, key: str, data: bytes | None = None, **form):
    return client.post("/api/v1/jobs", data={"image": (io.BytesIO(data or make.jpeg()), "x.jpg"), **form},
                       content_type="multipart/form-data", headers=bearer(key))


def test_a_user_sees_only_their_own_jobs_everywhere(client, people):
    job = upload(client, people["a"]).json
    assert client.get(job["url"], headers=bearer(people["a"])).status_code == 200
    for path in (f"/api/v1/jobs/{job['id']}", f"/jobs/{job['id']}", f"/jobs/{job['id']}/image"):
        response = client.get(path, headers=bearer(people["b"]))
        assert response.status_code == 404, path
    assert client.get("/api/v1/jobs", headers=bearer(people["b"])).json["total"] == 0
    assert client.get("/history", headers=bearer(people["b"])).data.count(job["id"].encode()) == 0
    assert client.get("/api/v1/jobs", headers=bearer(people["a"])).json["total"] == 1
    assert client.get(f"/api/v1/jobs/{job['id']}", headers=bearer(people["root"])).status_code == 200


def test_no_route_answers_without_a_key_or_session(app, client, people):
    job = upload(client, people["a"]).json
    # /metrics has its own guard (basic auth, else loopback only: tests/web/test_metrics.py)
    open_routes = {"static", "health.healthz", "health.readyz", "auth.login", "auth.logout", "metrics"}
    for rule in app.url_map.iter_rules():
        if rule.endpoint in open_routes:
            continue
        path = rule.rule.replace("<job_id>", job["id"])
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            response = client.open(path, method=method)
            if path.startswith("/api/"):
                assert response.status_code == 401 and response.json["error"]["code"] == "unauthorized", path
            elif method == "GET":
                assert response.status_code == 302 and "/login" in response.headers["Location"], path
            else:
                assert response.status_code in (400, 401, 302), (method, path)


def test_a_wrong_key_is_refused_and_keys_are_stored_only_as_hashes(client, people, settings):
    response = client.get("/api/v1/jobs", headers=bearer("dbk_nope_nope"))
    assert response.status_code == 401 and response.json["error"]["code"] == "invalid_api_key"
    engine = make_engine(settings.database_url)
    with session_scope(make_sessionmaker(engine)) as session:
        stored = [row.key_hash for row in session.scalars(select(ApiKey))]
    engine.dispose()
    assert len(stored) == 3 and not set(stored) & set(people.values())


def login(client, name: str, password: str):
    page = client.get("/login").data.decode()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return client.post("/login", data={"name": name, "password": password, "csrf_token": csrf})


def test_web_login_session_and_csrf_on_forms(client, people):
    assert login(client, "a", "wrong").status_code == 401
    assert login(client, "a", "a-password").status_code == 302
    page = client.get("/").data.decode()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    no_token = client.post("/", data={"image": (io.BytesIO(make.jpeg()), "x.jpg")}, content_type="multipart/form-data")
    assert no_token.status_code == 400 and b"reload the page" in no_token.data
    ok = client.post("/", data={"image": (io.BytesIO(make.jpeg()), "x.jpg"), "csrf_token": csrf},
                     content_type="multipart/form-data")
    assert ok.status_code == 303 and "/jobs/" in ok.headers["Location"]
    bad_form = client.post("/", data={"image": (io.BytesIO(b"not an image"), "x.jpg"), "csrf_token": csrf},
                           content_type="multipart/form-data")
    assert bad_form.status_code == 415 and b"not an image" in bad_form.data


def test_rate_limit_per_key_answers_429_with_retry_after(make_settings, redis_url, queue_name, people):
    from web.app import create_app

    client = create_app(make_settings(broker_url=redis_url, queue=queue_name, auth_required=True,
                                      rate_limit_per_minute=3)).test_client()
    statuses = [upload(client, people["a"], make.jpeg(seed=i)).status_code for i in range(4)]
    assert statuses == [202, 202, 202, 429]
    limited = upload(client, people["a"])
    assert limited.json["error"]["code"] == "rate_limited" and 0 < int(limited.headers["Retry-After"]) <= 60
    assert upload(client, people["b"]).status_code == 202  # per key, not global


def test_backpressure_answers_503_when_the_queue_is_full(make_settings, redis_url, queue_name, people):
    from web.app import create_app

    client = create_app(make_settings(broker_url=redis_url, queue=queue_name, auth_required=True,
                                      max_queued_jobs=2)).test_client()
    statuses = [upload(client, people["a"], make.jpeg(seed=i)).status_code for i in range(3)]
    assert statuses == [202, 202, 503]
    full = upload(client, people["a"])
    assert full.json["error"]["code"] == "queue_full" and full.headers["Retry-After"]


def test_the_noop_pipeline_is_for_admins(client, people):
    assert upload(client, people["a"], pipeline="noop").status_code == 403
    assert upload(client, people["root"], pipeline="noop").status_code == 202
