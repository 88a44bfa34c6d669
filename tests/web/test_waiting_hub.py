"""The web process's listener on a real Redis: a waiter is woken by a publish, and by a lost connection
(it reads again), and the listener subscribes again once Redis is back."""
from __future__ import annotations

import shutil

import pytest
import redis

from cli.broker import start_redis_server
from shared import job_events
from shared.redis_keys import job_events_channel
from tests.helpers.services import wait_for
from web.waiting import Hub

pytestmark = pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server is not on PATH")


def publish(port: int, job_id: str, album_id: str | None = None) -> None:
    redis.Redis(port=port).publish(job_events_channel("q"), job_events.message([(job_id, album_id, "succeeded")]))


def test_a_waiter_is_woken_by_its_job_or_album_and_by_a_lost_connection():
    server = start_redis_server()
    port = server.port
    hub = Hub(f"redis://127.0.0.1:{port}/0", "q", max_waiters=2)
    try:
        job_slot, album_slot = hub.slot(["job:J1"]), hub.slot(["batch:A1"])
        assert job_slot and album_slot and hub.slot(["job:J2"]) is None  # the cap: 2
        publish(port, "other")
        publish(port, "J1")
        assert job_slot.wait(60)
        publish(port, "J9", "A1")
        assert album_slot.wait(60)
        job_slot.close()
        again = hub.slot(["job:J2"])
        assert again is not None  # a closed slot is free again
        again.close()
        server.kill()
        server.wait()
        assert album_slot.wait(60)  # the connection is lost: read again, something may have changed
        wait_for(lambda: not hub.ready.is_set(), 30, 0.1, "the listener to notice")
        server = start_redis_server(port)
        wait_for(hub.ready.is_set, 60, 0.2, "the listener to subscribe again")
        fresh = hub.slot(["job:J3"])
        assert fresh is not None
        publish(port, "J3")
        assert fresh.wait(60)
    finally:
        hub.close()
        server.kill()
        server.wait()
