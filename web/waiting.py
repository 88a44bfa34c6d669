"""Waiting for a job or an album to change, without polling the database and within a cap.

Each web process keeps ONE Redis pub/sub connection (a listener thread) on the job-events channel
(shared/job_events.py) and wakes the local waiters of the jobs and albums a message names. A waiter
takes a slot first, then reads the database, then sleeps until a wake-up or its deadline, and reads
again: a change committed before the slot was taken is seen by the read, one after it wakes the
slot. While a waiter sleeps it holds no database connection.

At most DOGBREED_MAX_WAITERS slots per process: `dogbreed web` gives gunicorn that many threads
more than the ones that serve submits (cli/services.py), so waiters can never take the request
threads that submits need. Beyond the cap, or with Redis away, there is no slot: sync mode answers
at once and a stream is refused.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Callable, Iterable, TypeVar

import redis
from flask import Flask, current_app, request

from shared import job_events
from shared.redis_keys import job_events_channel
from web.database import db
from web.errors import ApiError

log = logging.getLogger(__name__)
MAX_WAIT_S = 60
READY_WITHIN_S = 2.0  # how long a first waiter gives the listener to subscribe
T = TypeVar("T")


class Slot:
    """One waiter's place: set when a change to one of its keys is published."""

    def __init__(self, hub: "Hub", keys: tuple[str, ...]) -> None:
        self.hub, self.keys = hub, keys
        self._woken = threading.Event()
        self._closed = False

    def wake(self) -> None:
        self._woken.set()

    def wait(self, timeout_s: float) -> bool:
        """True when woken (cleared again, so the next change wakes the next wait)."""
        woken = self._woken.wait(max(0.0, timeout_s))
        self._woken.clear()
        return woken

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.hub.release(self)


class Hub:
    """The process's waiters, keyed `job:<id>` and `batch:<id>`, and the listener that wakes them."""

    def __init__(self, broker_url: str | None, queue: str, max_waiters: int) -> None:
        self.broker_url, self.queue, self.max_waiters = broker_url, queue, max_waiters
        self.channel = job_events_channel(queue)
        self._client: redis.Redis | None = None  # for publishing; thread-safe, made on first use
        self._lock = threading.Lock()
        self._slots: dict[str, set[Slot]] = {}
        self.count = 0
        self.ready = threading.Event()
        self._pid: int | None = None  # the listener belongs to the process that started it (gunicorn forks)
        self._stopped = threading.Event()

    def publish(self, session: Any) -> None:
        """After a commit in web (a cancel): what it changed, to every web process's waiters."""
        if self.broker_url and self._client is None:
            self._client = redis.Redis.from_url(self.broker_url, socket_connect_timeout=2, socket_timeout=2)
        job_events.publish(session, self._client, self.queue)

    def slot(self, keys: Iterable[str]) -> Slot | None:
        """A slot for these keys; None beyond the cap or while the listener is not subscribed."""
        if not self.broker_url or self.max_waiters <= 0:
            return None
        self._start()
        if not self.ready.wait(READY_WITHIN_S):
            return None
        slot = Slot(self, tuple(keys))
        with self._lock:
            if self.count >= self.max_waiters:
                return None
            self.count += 1
            for key in slot.keys:
                self._slots.setdefault(key, set()).add(slot)
        return slot

    def release(self, slot: Slot) -> None:
        with self._lock:
            self.count -= 1
            for key in slot.keys:
                waiting = self._slots.get(key)
                if waiting is not None:
                    waiting.discard(slot)
                    if not waiting:
                        del self._slots[key]

    def wake(self, keys: Iterable[str]) -> None:
        with self._lock:
            found = [slot for key in keys for slot in self._slots.get(key, ())]
        for slot in found:
            slot.wake()

    def _wake_all(self) -> None:
        """After the connection was lost: anything may have changed meanwhile, so every waiter reads again."""
        with self._lock:
            found = [slot for slots in self._slots.values() for slot in slots]
        for slot in found:
            slot.wake()

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self.ready.clear()
        threading.Thread(target=self._listen, name="job-events", daemon=True).start()

    def close(self) -> None:
        """The listener stops within a few seconds (tests; a process's own one lives as long as it)."""
        self._stopped.set()

    def _listen(self) -> None:
        backoff = 0.5
        while not self._stopped.is_set():
            client = redis.Redis.from_url(self.broker_url or "", socket_connect_timeout=2, health_check_interval=30)
            pubsub = client.pubsub()
            try:
                pubsub.subscribe(self.channel)
                while not self._stopped.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        self._wake_all()  # then ready: a slot taken after this is woken only by its changes
                        self.ready.set()
                        backoff = 0.5
                    elif message["type"] == "message":
                        self.wake(key for change in job_events.parse(message["data"])
                                  for key in (f"job:{change['job']}", f"batch:{change.get('batch')}"))
            except Exception as exc:  # redis.RedisError and the odd socket error: connect again
                self.ready.clear()
                self._wake_all()
                log.warning("job events: %s; listening again in %.1fs", exc, backoff)
                self._stopped.wait(backoff)
                backoff = min(10.0, backoff * 2)
            finally:
                pubsub.close()
                client.close()


def init_app(app: Flask) -> None:
    settings = app.config["SETTINGS"]
    url = settings.broker_url if settings.broker_url and settings.broker_url.startswith(("redis://", "rediss://")) else None
    app.extensions["waiting"] = Hub(url, settings.queue, settings.max_waiters)


def hub() -> Hub:
    return current_app.extensions["waiting"]


def _seconds(raw: str, where: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ApiError("bad_wait", f"{where}: wait is a whole number of seconds, 0 to {MAX_WAIT_S}.", 400) from None
    if value < 0:
        raise ApiError("bad_wait", f"{where}: wait is a whole number of seconds, 0 to {MAX_WAIT_S}.", 400)
    return min(value, MAX_WAIT_S)


def prefer_wait() -> int | None:
    """`Prefer: wait=N` (RFC 7240; more than 60 is taken as 60, `wait` alone means 60), else None."""
    for part in ",".join(request.headers.getlist("Prefer")).split(","):
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "wait":
            value = value.split(";", 1)[0].strip().strip('"')
            return _seconds(value, "Prefer") if value else MAX_WAIT_S
    return None


def query_wait() -> int | None:
    """`?wait=N` on a GET: the same seconds as Prefer."""
    raw = request.args.get("wait")
    if raw is None:
        return None
    return _seconds(raw.strip(), "?wait") if raw.strip() else MAX_WAIT_S


def until(keys: Iterable[str], read: Callable[[], T], done: Callable[[T], bool], seconds: float) -> tuple[T, bool]:
    """Read until `done` or `seconds` pass, woken by published changes. Returns the last read and
    whether the wait was taken (False beyond the cap: one read, at once)."""
    slot = hub().slot(keys) if seconds > 0 else None
    if slot is None:
        return read(), False
    try:
        deadline = time.monotonic() + seconds
        while True:
            db().close()  # a fresh read, and no connection held while asleep
            found = read()
            left = deadline - time.monotonic()
            if done(found) or left <= 0:
                return found, True
            db().close()
            slot.wait(left)
    finally:
        slot.close()


def applied(seconds: int) -> dict[str, Any]:
    return {"Preference-Applied": f"wait={seconds}"}
