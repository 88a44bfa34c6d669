"""Per-key submission limits in Redis: a fixed one-minute window, answered with 429 + Retry-After."""
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
    if settings.broker_url and settings.broker_url.startswith(("redis://", "rediss://")) and settings.rate_limit_per_minute > 0:
        client = redis.Redis.from_url(settings.broker_url, socket_connect_timeout=1, socket_timeout=1)
    app.extensions["ratelimit"] = client


def check_submission() -> None:
    """Count this caller's submissions; fail open when Redis is away (the enqueue will say so)."""
    client: redis.Redis | None = current_app.extensions.get("ratelimit")
    if client is None:
        return
    settings = current_app.config["SETTINGS"]
    limit = settings.rate_limit_per_minute
    user = g.get("user")
    who = f"user:{user.id}" if user else f"ip:{request.remote_addr}"
    window = int(time.time()) // WINDOW_S
    key = f"{settings.queue}:ratelimit:{who}:{window}"  # per deployment sharing a Redis
    try:
        with client.pipeline() as pipe:
            count, _ = pipe.incr(key).expire(key, WINDOW_S * 2).execute()
    except redis.RedisError as exc:
        log.debug("rate limiter unavailable: %s", exc)
        return
    if count > limit:
        retry_after = WINDOW_S - int(time.time()) % WINDOW_S
        raise ApiError(429, "rate_limited", f"More than {limit} submissions this minute; try again in {retry_after} s.",
                       {"Retry-After": str(retry_after)})
