"""Application factory: HTTP only. Talks to the database and to the broker (by task name)."""
from __future__ import annotations

import logging
import secrets
import socket
import time
from datetime import timedelta

from flask import Flask, g, request

from shared import images, logs
from shared.settings import Settings
from shared.storage import open_image_store
from web import (
    auth,
    database,
    errors,
    health,
    labels,
    metrics,
    openapi,
    pages,
    queue,
    ratelimit,
    security,
    uploads,
)
from web.events import init_app as init_waiting


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    images.set_max_concurrent_decodes(settings.max_concurrent_decodes)
    images.set_decode_memory_mb(settings.decode_memory_mb)
    app = Flask(__name__)
    app.config.update(
        SETTINGS=settings,
        SECRET_KEY=settings.secret_key or secrets.token_hex(32),
        # Werkzeug refuses bigger bodies with 413 before we read them; a little room for the form.
        MAX_CONTENT_LENGTH=uploads.body_limit(settings.max_upload_bytes),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.session_hours),
        JSON_SORT_KEYS=False,
    )
    _request_ids(app, logs.configure(settings, f"web@{socket.gethostname()}"))
    if not settings.secret_key:
        logging.getLogger(__name__).warning("DOGBREED_SECRET_KEY is not set: sessions end when the web process restarts")
    security.init_app(app)
    database.init_app(app)
    app.extensions["image_store"] = open_image_store(settings)  # one per app: an S3 client is costly to make
    queue.init_app(app)
    ratelimit.init_app(app)
    init_waiting(app)  # sync mode and event streams
    errors.init_app(app)
    uploads.init_app(app)
    auth.init_app(app)
    metrics.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(labels.bp)  # the API's blueprint (api.bp), with web/labels.py's routes on it
    app.register_blueprint(openapi.bp)
    app.register_blueprint(pages.bp)
    return app


def _request_ids(app: Flask, json_logs: bool) -> None:
    """Each request gets an id (the caller's X-Request-Id, or a new one), echoed in the response and in its
    logs; with JSON logs the app writes the access line itself (gunicorn's is not JSON)."""
    access = logging.getLogger("dogbreed.access")

    @app.before_request
    def _start() -> None:
        g.request_id, g.started = logs.request_id(request.headers.get("X-Request-Id")), time.perf_counter()
        logs.request_id_var.set(g.request_id)
        logs.job_id_var.set(None)

    @app.after_request
    def _finish(response):
        response.headers["X-Request-Id"] = g.get("request_id", "")
        if json_logs:
            access.info("%s %s %s %.1fms", request.method, request.path, response.status_code,
                        (time.perf_counter() - g.get("started", time.perf_counter())) * 1000)
        return response
