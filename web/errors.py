"""Every error is an answer: JSON `{"error": {"code", "message"}}` for the API, a page for people."""
from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, render_template, request
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException

from shared.errors import DogbreedError
from shared.images import ImageError
from web.queue import BrokerUnavailable

log = logging.getLogger(__name__)


class ApiError(DogbreedError):
    """A refusal made in web/, answered as it is; `headers` go with it (Retry-After, WWW-Authenticate)."""

    code: str
    status: int = 400

    def __init__(self, code: str, message: str, status: int | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(code, message, status)
        self.headers = headers or {}


def http_error_code(exc: HTTPException) -> str:
    """Werkzeug's own errors (no such route, method ...) answer with their name as the code: "not_found"."""
    return (exc.name or "error").lower().replace(" ", "_")


def wants_json() -> bool:
    if request.path.startswith("/api/") or request.path in ("/healthz", "/readyz", "/metrics"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None):
    if wants_json():
        response: Response | str = jsonify(error={"code": code, "message": message})
    else:
        response = render_template("error.html", status=status, code=code, message=message)
    return response, status, headers or {}


def init_app(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.errorhandler(ImageError)
    def _image_error(exc: ImageError):
        return error_response(exc.status, exc.code, exc.message)

    @app.errorhandler(BrokerUnavailable)
    def _broker(exc: BrokerUnavailable):
        return error_response(503, "queue_unavailable", str(exc), {"Retry-After": "30"})

    @app.errorhandler(OperationalError)
    @app.errorhandler(DBAPIError)
    def _database(exc: Exception):
        log.warning("database unavailable: %s", exc)
        return error_response(503, "database_unavailable",
                              "The database is not reachable right now; try again in a minute.", {"Retry-After": "30"})

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        code = http_error_code(exc)
        message = exc.description or exc.name
        if exc.code == 413:
            limit = app.config["SETTINGS"].max_upload_bytes
            code, message = "file_too_large", f"The upload is over the {limit // (1024 * 1024)} MiB limit; send a smaller image."
        return error_response(exc.code or 500, code, message)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "Something went wrong on our side; it has been logged.")
