"""Limits in Redis, answered with 429 + Retry-After: submissions per key (one-minute window) and
failed logins per name and address, per address and per name (DOGBREED_LOGIN_FAILURES per 15 minutes, see _login_limits)."""
from __future__ import annotations

import logging
import time

import redis
from flask import Flask, current_app, g, request

from web.errors import ApiError

log = logging.getLogger(__name__)
WINDOW_S = 60


def init_app(app: Flask) -> None:
    settings = app.config["SETTINGS"]
    client = None
    wanted = settings.rate_limit_per_minute > 0 or settings.login_failures > 0
    if settings.broker_url and settings.broker_url.startswith(("redis://", "rediss://")) and wanted:
        client = redis.Redis.from_url(settings.broker_url, socket_connect_timeout=1, socket_timeout=1)
    app.extensions["ratelimit"] = client


def check_submission(images: int = 1) -> None:
    """Count this caller's images (an album of N counts N); fail open when Redis is away (the enqueue will say so)."""
    client: redis.Redis | None = current_app.extensions.get("ratelimit")
    if client is None:
        return
    settings = current_app.config["SETTINGS"]
    limit = settings.rate_limit_per_minute
    if limit <= 0:
        return
    user = g.get("user")
    who = f"user:{user.id}" if user else f"ip:{request.remote_addr}"
    now = time.time()
    window = int(now) // WINDOW_S
    key = f"{settings.queue}:ratelimit:{who}:{window}"  # per deployment sharing a Redis
    previous_key = f"{settings.queue}:ratelimit:{who}:{window - 1}"
    try:
        with client.pipeline() as pipe:
            # ignored: redis-py types a pipeline's commands by their reply, yet each returns the pipeline
            count, _, previous = pipe.incr(key, images).expire(key, WINDOW_S * 2).get(previous_key).execute()  # type: ignore[attr-defined]
    except redis.RedisError as exc:
        log.debug("rate limiter unavailable: %s", exc)
        return
    # Sliding window: the last minute's count weighs as much of it as still overlaps the last 60 s,
    # so no burst of twice the limit fits across a window edge.
    elapsed = (now % WINDOW_S) / WINDOW_S
    if count + int(previous or 0) * (1 - elapsed) > limit:
        client.decr(key, images)  # a refused submission does not count against the next minute
        retry_after = max(1, int(WINDOW_S - now % WINDOW_S))
        advice = f"send it as albums of at most {limit}" if images > limit else f"try again in {retry_after} s"
        raise ApiError("rate_limited", f"More than {limit} images this minute (this request has {images}); {advice}.", 429,
                       {"Retry-After": str(retry_after)})


LOGIN_WINDOW_S = 15 * 60
ADDRESS_FACTOR, NAME_FACTOR = 3, 10


def _login_keys(name: str) -> list[str]:
    queue = current_app.config["SETTINGS"].queue
    return [f"{queue}:login-failures:name:{name.lower()}", f"{queue}:login-failures:ip:{request.remote_addr}"]


def _login_limits(name: str) -> list[tuple[str, int]]:
    """Failed logins per 15 minutes: DOGBREED_LOGIN_FAILURES for a name from one address, three times that
    from one address (any names), ten times that for a name from everywhere. A guesser elsewhere cannot lock
    a user out with ten tries: the lock is their own (name, address); the name's own brake on a guessing
    crowd takes ten addresses spending their whole budget."""
    queue, limit = current_app.config["SETTINGS"].queue, current_app.config["SETTINGS"].login_failures
    name, address = name.lower(), request.remote_addr
    return [(f"{queue}:login-failures:name-ip:{name}:{address}", limit),
            (f"{queue}:login-failures:ip:{address}", limit * ADDRESS_FACTOR),
            (f"{queue}:login-failures:name:{name}", limit * NAME_FACTOR)]


def login_attempt(name: str) -> int:
    """Count this try BEFORE its password is checked (one INCR per limit, in one transaction), then
    compare: concurrent guesses each get their own count, so no more than the limit are ever checked.
    Returns the seconds to wait when over a limit (the try is then taken back), 0 when it may go on."""
    client: redis.Redis | None = current_app.extensions.get("ratelimit")
    if client is None or current_app.config["SETTINGS"].login_failures <= 0:
        return 0
    limits = _login_limits(name)
    try:
        with client.pipeline() as pipe:
            for key, _ in limits:
                # ignored: redis-py types a pipeline's commands by their reply, yet each returns the pipeline
                pipe.set(key, 0, ex=LOGIN_WINDOW_S, nx=True).incr(key).ttl(key)  # type: ignore[union-attr]
            replies = pipe.execute()
    except redis.RedisError as exc:
        log.debug("login limiter unavailable: %s", exc)
        return 0
    counts, ttls = replies[1::3], replies[2::3]
    waits = [max(1, ttl) for (_, allowed), count, ttl in zip(limits, counts, ttls) if int(count) > allowed]
    if waits:
        _take_back(client, limits)  # a refused try is no guess: it must not push the other limits
    return max(waits, default=0)


def login_succeeded(name: str) -> None:
    """The password was right: the try counted by login_attempt was no failure."""
    client: redis.Redis | None = current_app.extensions.get("ratelimit")
    if client is not None and current_app.config["SETTINGS"].login_failures > 0:
        _take_back(client, _login_limits(name))


def _take_back(client: redis.Redis, limits: list[tuple[str, int]]) -> None:
    try:
        with client.pipeline() as pipe:
            for key, _ in limits:
                pipe.decr(key)
            pipe.execute()
    except redis.RedisError as exc:
        log.debug("login limiter unavailable: %s", exc)
