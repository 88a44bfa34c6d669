"""`dogbreed up` finds a broker: configured, local Redis, redis-server from PATH, or embedded."""
import shutil

import pytest
import redis
from celery import Celery

from cli import broker


def test_configured_url_wins():
    chosen = broker.resolve("redis://example.invalid:6379/3")
    assert (chosen.kind, chosen.url) == ("configured", "redis://example.invalid:6379/3")


def test_local_redis_is_used_when_it_answers(redis_url):
    if not broker.redis_answers("127.0.0.1", 6379):
        pytest.skip("no Redis on 127.0.0.1:6379 here")
    chosen = broker.resolve(None)
    assert chosen.kind == "local-redis" and "already answering" in chosen.describe()


@pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server is not on PATH")
def test_a_started_redis_server_wants_a_generated_password_that_is_never_shown():
    chosen = broker.resolve(None, prefer_local=False)
    try:
        password = redis.Redis.from_url(chosen.url).connection_pool.connection_kwargs["password"]
        assert chosen.kind == "started-redis" and len(password) >= 24
        assert redis.Redis.from_url(chosen.url).ping()
        port = chosen.process.port
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port).ping()
        assert not broker.redis_answers("127.0.0.1", port) and broker.redis_answers("127.0.0.1", port, password=password)
        line = chosen.describe()
        assert "password" in line and password not in line and f"127.0.0.1:{port}" in line
        cmdline = open(f"/proc/{chosen.process.pid}/cmdline", "rb").read()  # what `ps` shows anyone
        assert password.encode() not in cmdline
    finally:
        chosen.stop()


def test_a_configured_password_is_not_shown():
    line = broker.resolve("redis://:hunter2@example.invalid:6379/3").describe()
    assert "hunter2" not in line and "redis://:***@example.invalid:6379/3" in line


@pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server is not on PATH")
def test_redis_server_is_started_from_path_and_stopped_after():
    chosen = broker.resolve(None, prefer_local=False)
    try:
        assert chosen.kind == "started-redis"
        assert redis.Redis.from_url(chosen.url).ping()
    finally:
        chosen.stop()
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(chosen.url, socket_connect_timeout=1).ping()


def test_embedded_server_carries_celery_messages(monkeypatch):
    monkeypatch.setattr(broker.shutil, "which", lambda name: None)  # as on a machine without Redis
    chosen = broker.resolve(None, prefer_local=False)
    try:
        assert chosen.kind == "embedded" and "trying out" in chosen.describe()
        app = Celery("probe", broker=chosen.url)
        app.send_task("dogbreed.noop", args=["x"], queue="probe")
        assert redis.Redis.from_url(chosen.url).llen("probe") == 1
    finally:
        chosen.stop()
