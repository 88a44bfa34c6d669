"""Login sessions the server can end: each login gets an id of its own (kept in the signed cookie), and
logout records that id as ended in Redis for as long as the session could have lasted anyway, so a copied
cookie stops working at logout, not DOGBREED_SESSION_HOURS later.

Without Redis (a broker of another kind) nothing can be recorded and logout only clears the browser's
cookie; when Redis does not answer, the check lets the session on (logged): the service cannot take
jobs then anyway, and a recorded end is still there when Redis is back.
"""
from __future__ import annotations

import logging
import secrets

import redis
from flask import Flask, current_app
from flask.sessions import SessionMixin

log = logging.getLogger(__name__)
SESSION_ID = "sid"


def init_app(app: Flask) -> None:
    url = app.config["SETTINGS"].broker_url
    app.extensions["session_ends"] = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1) \
        if url and url.startswith(("redis://", "rediss://")) else None


def _key(session_id: str) -> str:
    return f"{current_app.config['SETTINGS'].queue}:session-ended:{session_id}"


def start(session: SessionMixin) -> None:
    session[SESSION_ID] = secrets.token_urlsafe(18)


def ended(session: SessionMixin) -> bool:
    """True for a session logged out (or one without an id: made before ids existed; log in again)."""
    session_id = session.get(SESSION_ID)
    if not isinstance(session_id, str) or not session_id:
        return True
    client: redis.Redis | None = current_app.extensions.get("session_ends")
    if client is None:
        return False
    try:
        return bool(client.exists(_key(session_id)))
    except redis.RedisError as exc:
        log.warning("cannot check whether session %s… was logged out (Redis: %s); letting it on", session_id[:6], exc)
        return False


def end(session: SessionMixin) -> None:
    session_id = session.get(SESSION_ID)
    client: redis.Redis | None = current_app.extensions.get("session_ends")
    if not isinstance(session_id, str) or not session_id or client is None:
        return
    try:
        client.set(_key(session_id), 1, ex=current_app.config["SETTINGS"].session_hours * 3600)
    except redis.RedisError as exc:
        log.warning("could not record the logout of session %s… (Redis: %s): its cookie works until it expires",
                    session_id[:6], exc)
