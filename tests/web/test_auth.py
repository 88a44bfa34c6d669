"""Nobody where they don't belong: keys, sessions, CSRF, per-user jobs, limits."""
import io
import re

import pytest
from sqlalchemy import select

from shared import accounts
from shared.tables import ApiKey
from tests.factories import bearer, database
from tests.helpers import images as make


@pytest.fixture
def settings(make_settings, redis_url, queue_name):
    return make_settings(broker_url=redis_url, queue=queue_name, auth_required=True)




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
    # The API description and its viewer hold no data: public, like the health checks. /metrics has
    # its own guard (basic auth, else loopback only: tests/web/test_metrics.py).
    open_routes = {"static", "health.healthz", "health.readyz", "auth.login", "auth.logout",
                   "docs.openapi_json", "docs.docs_page", "docs.docs_asset", "metrics"}
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
    with database(settings.database_url) as session:
        stored = [row.key_hash for row in session.scalars(select(ApiKey))]
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


def test_concurrent_submits_never_overshoot_the_queue_bound(make_settings, redis_url, queue_name, people):
    """Twelve requests race for three places: requests take turns to count and insert, so exactly three
    are accepted (no worker drains this queue), none overshoots and none refuses for the others."""
    import concurrent.futures as cf

    from shared.jobs import count_unfinished
    from web.app import create_app

    settings = make_settings(broker_url=redis_url, queue=queue_name, auth_required=True, max_queued_jobs=3,
                             rate_limit_per_minute=0)
    client = create_app(settings).test_client()
    with cf.ThreadPoolExecutor(12) as pool:
        statuses = list(pool.map(lambda i: upload(client, people["a"], make.jpeg(seed=i)).status_code, range(12)))
    assert sorted(statuses) == [202] * 3 + [503] * 9, statuses
    with database(settings.database_url) as session:
        assert count_unfinished(session) == 3


def test_the_noop_pipeline_is_for_admins(client, people):
    assert upload(client, people["a"], pipeline="noop").status_code == 403
    assert upload(client, people["root"], pipeline="noop").status_code == 202


def test_failed_logins_are_throttled_per_name(make_settings, redis_url, queue_name, people):
    from web.app import create_app

    client = create_app(make_settings(broker_url=redis_url, queue=queue_name, auth_required=True,
                                      login_failures=3)).test_client()
    assert [login(client, "a", f"guess{i}").status_code for i in range(4)] == [401, 401, 401, 429]
    blocked = login(client, "a", "a-password")  # even the right password waits now
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0 and b"Too many" in blocked.data


def test_an_unknown_name_costs_a_password_check_like_a_known_one(settings, people, monkeypatch):
    """Timing must not tell which names exist: both paths hash the password once (a spy around the real check)."""
    calls = []
    real = accounts.check_password_hash
    monkeypatch.setattr(accounts, "check_password_hash", lambda h, p: calls.append(h) or real(h, p))
    with database(settings.database_url) as session:
        assert accounts.check_login(session, "nobody", "x") is None
        assert accounts.check_login(session, "a", "x") is None
    assert len(calls) == 2 and calls[0].split("$")[0] == calls[1].split("$")[0]  # same method and cost


def test_disabling_a_user_ends_sessions_and_keys_and_sessions_expire(app, client, people, settings):
    assert app.permanent_session_lifetime.total_seconds() == settings.session_hours * 3600 < 31 * 24 * 3600
    assert login(client, "a", "a-password").status_code == 302
    assert client.get("/history").status_code == 200
    with database(settings.database_url) as session:
        accounts.disable_user(session, accounts.find_user(session, "a"))
    assert client.get("/history").status_code == 302  # back to the login page
    assert client.get("/api/v1/jobs", headers=bearer(people["a"])).status_code == 401
    assert login(client, "a", "a-password").status_code == 401


def test_behind_a_tls_proxy_cookies_are_secure_hsts_is_sent_and_no_page_can_be_framed(make_settings, redis_url,
                                                                                       queue_name, people):
    from web.app import create_app

    client = create_app(make_settings(broker_url=redis_url, queue=queue_name, auth_required=True, secure_cookies=True,
                                      proxy_hops=1, hsts_seconds=3600)).test_client()
    proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "dogs.example"}
    page = client.get("/login", headers=proxied)
    assert "Secure" in page.headers["Set-Cookie"] and "HttpOnly" in page.headers["Set-Cookie"]
    assert page.headers["Strict-Transport-Security"].startswith("max-age=3600")
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert "Strict-Transport-Security" not in client.get("/login").headers  # plain HTTP, no proxy said https


def test_accounts_off_is_refused_beyond_loopback():
    from shared.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match="DOGBREED_HOST=127.0.0.1"):
        Settings.from_env({"DOGBREED_AUTH": "0", "DOGBREED_HOST": "0.0.0.0"})
    assert not Settings.from_env({"DOGBREED_AUTH": "0"}).auth_required


def test_odd_csrf_tokens_and_huge_pages_get_a_4xx_not_a_500(client, people):
    assert login(client, "a", "a-password").status_code == 302
    odd = client.post("/", data={"image": (io.BytesIO(make.jpeg()), "x.jpg"), "csrf_token": "ünïcödé"},
                      content_type="multipart/form-data")
    assert odd.status_code == 400 and b"reload the page" in odd.data
    huge = client.get(f"/api/v1/jobs?page={10**17}", headers=bearer(people["a"]))
    assert huge.status_code == 400 and huge.json["error"]["code"] == "bad_page"


def test_the_rate_limit_allows_no_double_burst_across_a_minute_edge(make_settings, redis_url, queue_name, people):
    """Submissions of the minute just past still count after the edge (sliding window), so a client
    cannot send the limit at 0:59 and again at 1:00."""
    import time

    import redis as redis_lib

    from web.app import create_app

    settings = make_settings(broker_url=redis_url, queue=queue_name, auth_required=True, rate_limit_per_minute=3)
    client = create_app(settings).test_client()
    with database(settings.database_url) as session:
        user_id = accounts.find_user(session, "a").id
    window = int(time.time()) // 60
    redis_lib.Redis.from_url(redis_url).set(f"{queue_name}:ratelimit:user:{user_id}:{window - 1}", 10**6, ex=120)
    limited = upload(client, people["a"])
    assert limited.status_code == 429 and limited.json["error"]["code"] == "rate_limited"
    assert upload(client, people["b"]).status_code == 202
