"""Application factory: HTTP only. Talks to the database and to the broker (by task name)."""
from __future__ import annotations

import logging
import secrets

from flask import Flask

from shared.settings import Settings
from web import api, auth, database, errors, health, metrics, pages, queue, ratelimit


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config.update(
        SETTINGS=settings,
        SECRET_KEY=settings.secret_key or secrets.token_hex(32),
        # Werkzeug refuses bigger bodies with 413 before we read them; a little room for the form.
        MAX_CONTENT_LENGTH=settings.max_upload_bytes + 64 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        JSON_SORT_KEYS=False,
    )
    if not settings.secret_key:
        logging.getLogger(__name__).warning("DOGBREED_SECRET_KEY is not set: sessions end when the web process restarts")
    database.init_app(app)
    queue.init_app(app)
    ratelimit.init_app(app)
    errors.init_app(app)
    auth.init_app(app)
    metrics.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(pages.bp)
    return app
