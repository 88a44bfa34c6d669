"""Pushed updates: a job's or an album's changes as a server-sent event stream.

`GET /api/v1/jobs/<id>/events` and `/api/v1/batches/<id>/events` send one `status` event per change
(the first at once, with the state found), then a `done` event whose data is the whole job or
album as the API shows it, and close. A stream is a waiter (web/waiting.py): it holds a slot, is
woken by published changes, and holds no database connection between them. It is refused with 503
`too_many_waiters` beyond DOGBREED_MAX_WAITERS. A stream open for STREAM_MAX_S ends without `done`;
EventSource connects again by itself.
"""
from __future__ import annotations

import json
import time
from typing import Any, Callable, Iterator

from flask import Blueprint, Flask, Response, stream_with_context

from web import waiting
from web.access import get_album_or_404, get_job_or_404
from web.api import album_done, album_json, job_ended, job_json
from web.auth import require_user
from web.database import db
from web.errors import ApiError

bp = Blueprint("events", __name__, url_prefix="/api/v1")
KEEPALIVE_S = 15.0  # a comment line this often: proxies keep the stream, and a gone client is noticed
STREAM_MAX_S = 600.0
RETRY_MS = 2000


def init_app(app: Flask) -> None:
    waiting.init_app(app)
    app.register_blueprint(bp)


@bp.before_request
def _auth() -> None:
    require_user()


def event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def stream(key: str, read: Callable[[], dict[str, Any]], status: Callable[[dict[str, Any]], dict[str, Any]],
           done: Callable[[dict[str, Any]], bool]) -> Response:
    slot = waiting.hub().slot([key])
    if slot is None:
        if waiting.hub().broker_url and not waiting.hub().ready.is_set():
            raise ApiError("queue_unavailable", "Updates cannot be pushed while the broker is away; poll the job's "
                                                "URL instead.", 503, {"Retry-After": "5"})
        raise ApiError("too_many_waiters", "Too many streams and waiting requests are open on this server; try "
                                           "again shortly, or poll the job's URL.", 503, {"Retry-After": "5"})

    def events() -> Iterator[str]:
        try:
            yield f"retry: {RETRY_MS}\n\n"
            deadline, last = time.monotonic() + STREAM_MAX_S, None
            while True:
                db().close()  # a fresh read, and no connection held while asleep
                body = read()
                now = status(body)
                if now != last:
                    yield event("status", now)
                    last = now
                if done(body):
                    yield event("done", body)
                    return
                db().close()
                while not slot.wait(min(KEEPALIVE_S, deadline - time.monotonic())):  # read again only when woken
                    if time.monotonic() >= deadline:
                        return
                    yield ": keepalive\n\n"
        finally:
            slot.close()

    response = Response(stream_with_context(events()), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    response.call_on_close(slot.close)  # also when the stream never started
    return response


@bp.get("/jobs/<job_id>/events")
def job_events(job_id: str):
    get_job_or_404(job_id)  # a 404 before any stream

    def read() -> dict[str, Any]:
        return job_json(get_job_or_404(job_id))

    return stream(f"job:{job_id}", read, lambda body: {"id": body["id"], "status": body["status"]}, job_ended)


@bp.get("/batches/<batch_id>/events")
def album_events(batch_id: str):
    get_album_or_404(batch_id)

    def read() -> dict[str, Any]:
        return album_json(get_album_or_404(batch_id))

    return stream(f"batch:{batch_id}", read, lambda body: {"id": body["id"], "summary": body["summary"]}, album_done)
