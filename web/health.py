"""Liveness and readiness, for people, load balancers and `dogbreed up`."""
from __future__ import annotations

import redis
from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from shared.redis_keys import alive_nodes
from web import queue
from web.database import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


def _workers_alive() -> int | None:
    """Workers whose heartbeat has not expired; None when the broker cannot be asked."""
    settings = current_app.config["SETTINGS"]
    if not settings.broker_url:
        return None
    try:
        client = redis.Redis.from_url(settings.broker_url, socket_connect_timeout=2, socket_timeout=2)
        try:
            return len(alive_nodes(client, settings.queue))
        finally:
            client.close()
    except (redis.RedisError, ValueError):
        return None


@bp.get("/readyz")
def readyz():
    """Ready means web can accept jobs (database and broker answer). Whether any worker is alive
    is reported beside it: without one, jobs are accepted and wait in the queue."""
    checks: dict[str, str] = {}
    try:
        db().execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
    try:
        queue.ping()
        checks["broker"] = "ok"
    except Exception as exc:
        checks["broker"] = f"unreachable: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    alive = _workers_alive()
    workers = {"alive": alive,
               "status": "unknown" if alive is None else "ok" if alive else "none alive: jobs wait in the queue"}
    return jsonify(status="ready" if ready else "not_ready", checks=checks, workers=workers), 200 if ready else 503
