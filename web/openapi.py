"""The API described by hand as OpenAPI 3.1, served at /api/v1/openapi.json; /api/docs shows it.

The test suite checks every API response it gets against this document, so it cannot drift.
Swagger UI's files come from the `swagger-ui-bundle` pip package, never from a CDN.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, render_template, send_from_directory

bp = Blueprint("docs", __name__)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        answer["headers"] = headers
    return answer


ERRORS = {
    400: "A bad field, parameter or file; `error.message` names the fix.",
    401: "No API key or session, or a wrong key (when auth is on).",
    403: "Not allowed for this user.",
    404: "Not there, or not yours (the same answer).",
    409: "Conflicts with the resource's state.",
    413: "The upload is too large.",
    415: "Not multipart/form-data, or not an image.",
    429: "Too many submissions this minute; see Retry-After.",
    500: "Our fault; it has been logged.",
    503: "The database or the queue is unavailable, or the queue is full; see Retry-After.",
}


def _errors(*statuses: int) -> dict[str, Any]:
    """The error answers a route may give, each the one error shape."""
    return {str(s): {"$ref": f"#/components/responses/E{s}"} for s in (*statuses, 500)}


_TIME = {"type": ["string", "null"], "format": "date-time"}
_RETRY_AFTER = {"Retry-After": {"schema": {"type": "string"}, "description": "Seconds to wait."}}
_LOCATION = {"Location": {"schema": {"type": "string", "format": "uri"}, "description": "The resource's API URL."}}
_JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 64}}
_BATCH_ID = {"name": "batch_id", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 64}}
_STATUSES = ["queued", "running", "succeeded", "failed", "canceled"]

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object", "required": ["error"], "additionalProperties": False,
        "properties": {"error": {"type": "object", "required": ["code", "message"], "additionalProperties": False,
                                 "properties": {"code": {"type": "string", "examples": ["not_an_image"]},
                                                "message": {"type": "string"}}}},
    },
    "Result": {
        "type": "object", "required": ["kind"],
        "description": "What the classifier found. `kind` is `noop` for the benchmark pipeline.",
        "properties": {
            "kind": {"enum": ["dog", "human", "neither", "noop"]},
            "sentence": {"type": "string"},
            "dog_score": {"type": "number"},
            "breeds": {"type": "array", "items": {"type": "object", "required": ["breed", "probability"],
                                                  "properties": {"breed": {"type": "string"},
                                                                 "probability": {"type": "number"}}}},
            "faces": {"type": "array", "items": {"type": "object", "required": ["x", "y", "w", "h"],
                                                 "properties": {k: {"type": "integer"} for k in "xywh"}}},
            "imagenet_top": {"type": "array", "items": {"type": "object"}},
            "model": {"type": "object"},
            "batch_size": {"type": "integer"},
        },
    },
    "Webhook": {
        "type": ["object", "null"], "required": ["url", "status", "attempts", "last_error"], "additionalProperties": False,
        "description": "Delivery of the job's JSON to its callback_url; null when it has none.",
        "properties": {"url": {"type": "string", "format": "uri"},
                       "status": {"enum": ["pending", "delivered", "failed"]},
                       "attempts": {"type": "integer", "minimum": 0},
                       "last_error": {"type": ["string", "null"]}},
    },
    "JobCore": {
        "type": "object",
        "required": ["id", "status", "batch_id", "created_at", "started_at", "finished_at", "attempts", "image",
                     "result", "error", "webhook"],
        "description": "A job as the webhook sends it.",
        "properties": {
            "id": {"type": "string"},
            "status": {"enum": _STATUSES},
            "batch_id": {"type": ["string", "null"]},
            "created_at": {"type": "string", "format": "date-time"},
            "started_at": _TIME, "finished_at": _TIME,
            "attempts": {"type": "integer", "minimum": 0},
            "image": {"type": "object", "additionalProperties": False,
                      "required": ["filename", "sha256", "bytes", "format", "width", "height"],
                      "properties": {"filename": {"type": ["string", "null"]}, "sha256": {"type": "string"},
                                     "bytes": {"type": "integer"}, "format": {"type": "string"},
                                     "width": {"type": "integer"}, "height": {"type": "integer"}}},
            "result": {"oneOf": [_ref("Result"), {"type": "null"}], "description": "Set when succeeded."},
            "error": {"oneOf": [_ref("Error/properties/error"), {"type": "null"}], "description": "Set when failed."},
            "webhook": _ref("Webhook"),
        },
    },
    "Job": {
        "allOf": [_ref("JobCore")],
        "type": "object", "required": ["url", "page_url", "image_url"], "unevaluatedProperties": False,
        "properties": {"url": {"type": "string", "format": "uri"}, "page_url": {"type": "string", "format": "uri"},
                       "image_url": {"type": "string", "format": "uri"}},
    },
    "JobList": {
        "type": "object", "required": ["jobs", "page", "per_page", "total", "pages", "next"], "additionalProperties": False,
        "properties": {"jobs": {"type": "array", "items": _ref("Job")}, "page": {"type": "integer"},
                       "per_page": {"type": "integer"}, "total": {"type": "integer"}, "pages": {"type": "integer"},
                       "next": {"type": ["string", "null"], "format": "uri"}},
    },
    "RejectedFile": {
        "type": "object", "required": ["filename", "error"], "additionalProperties": False,
        "description": "A file of an album that was refused; it keeps its place in the list.",
        "properties": {"filename": {"type": ["string", "null"]}, "error": _ref("Error/properties/error")},
    },
    "Batch": {
        "type": "object", "required": ["id", "created_at", "url", "page_url", "summary", "jobs"], "additionalProperties": False,
        "properties": {
            "id": {"type": "string"},
            "created_at": {"type": "string", "format": "date-time"},
            "url": {"type": "string", "format": "uri"},
            "page_url": {"type": "string", "format": "uri"},
            "summary": {"type": "object", "additionalProperties": False,
                        "required": [*_STATUSES, "rejected", "total", "done"],
                        "properties": {**{s: {"type": "integer"} for s in [*_STATUSES, "rejected", "total"]},
                                       "done": {"type": "boolean", "description": "No job is queued or running."}}},
            "jobs": {"type": "array", "items": {"oneOf": [_ref("Job"), _ref("RejectedFile")]}},
        },
    },
    "Health": {"type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}},
    "Readiness": {
        "type": "object", "required": ["status", "checks"],
        "properties": {"status": {"enum": ["ready", "not_ready"]},
                       "checks": {"type": "object", "additionalProperties": {"type": "string"}}},
    },
}

_SUBMIT_FORM: dict[str, Any] = {
    "type": "object", "required": ["image"],
    "properties": {
        "image": {"type": "string", "contentMediaType": "application/octet-stream",
                  "description": "One JPEG, PNG, WebP, GIF or BMP image."},
        "callback_url": {"type": "string", "format": "uri",
                         "description": "POSTed the job's JSON when it ends, signed in X-Dogbreed-Signature."},
        "pipeline": {"enum": ["classify", "noop"], "description": "`noop` (admins): the queue path without the model."},
    },
}
_FILTERS = [
    {"name": "status", "in": "query", "schema": {"enum": _STATUSES}},
    {"name": "kind", "in": "query", "schema": {"enum": ["dog", "human", "neither"]}},
    {"name": "since", "in": "query", "schema": {"type": "string"},
     "description": "ISO 8601 date or time (UTC when no offset); jobs created at or after it."},
    {"name": "until", "in": "query", "schema": {"type": "string"},
     "description": "ISO 8601 date or time; jobs created before it (a date alone: to the end of that day)."},
    {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 1}},
    {"name": "per_page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}},
]

PATHS: dict[str, Any] = {
    "/api/v1/jobs": {
        "post": {
            "operationId": "submitJob", "summary": "Submit one image", "tags": ["jobs"],
            "parameters": [{"name": "Idempotency-Key", "in": "header", "schema": {"type": "string", "maxLength": 255},
                            "description": "Same key and image within 24 h: the first job again (200), not a new one."}],
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": _SUBMIT_FORM}}},
            "responses": {"202": _json(_ref("Job"), "Accepted and queued.", _LOCATION),
                          "200": _json(_ref("Job"), "This Idempotency-Key already made this job.", _LOCATION),
                          **_errors(400, 401, 403, 409, 413, 415, 429, 503)},
        },
        "get": {
            "operationId": "listJobs", "summary": "History, newest first, with filters", "tags": ["jobs"],
            "parameters": _FILTERS,
            "responses": {"200": _json(_ref("JobList"), "One page of jobs."), **_errors(400, 401, 503)},
        },
    },
    "/api/v1/jobs/{job_id}": {
        "parameters": [_JOB_ID],
        "get": {"operationId": "getJob", "summary": "Poll a job", "tags": ["jobs"],
                "responses": {"200": _json(_ref("Job"), "The job."), **_errors(401, 404, 503)}},
        "delete": {"operationId": "cancelJob", "summary": "Cancel a queued or running job", "tags": ["jobs"],
                   "responses": {"200": _json(_ref("Job"), "Canceled; it will never get a result."),
                                 **_errors(400, 401, 404, 409, 503)}},
    },
    "/api/v1/batches": {
        "post": {
            "operationId": "submitBatch", "summary": "Submit an album (several `image` parts)", "tags": ["batches"],
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["image"],
                "properties": {"image": {"type": "array", "items": {"type": "string", "contentMediaType": "application/octet-stream"},
                                         "description": "Up to DOGBREED_MAX_FILES_PER_REQUEST (default 32) images."},
                               "callback_url": _SUBMIT_FORM["properties"]["callback_url"]}}}}},
            "responses": {"202": _json(_ref("Batch"), "Accepted; a bad file is listed in place with its error.", _LOCATION),
                          **_errors(400, 401, 413, 415, 429, 503)},
        },
    },
    "/api/v1/batches/{batch_id}": {
        "parameters": [_BATCH_ID],
        "get": {"operationId": "getBatch", "summary": "An album's jobs and summary", "tags": ["batches"],
                "responses": {"200": _json(_ref("Batch"), "The album."), **_errors(401, 404, 503)}},
    },
    "/api/v1/openapi.json": {
        "get": {"operationId": "openapi", "summary": "This document", "tags": ["meta"], "security": [],
                "responses": {"200": _json({"type": "object", "required": ["openapi", "paths"]}, "OpenAPI 3.1.")}},
    },
    "/healthz": {
        "get": {"operationId": "health", "summary": "Liveness", "tags": ["meta"], "security": [],
                "responses": {"200": _json(_ref("Health"), "The web process runs.")}},
    },
    "/readyz": {
        "get": {"operationId": "ready", "summary": "Readiness: database and broker", "tags": ["meta"], "security": [],
                "responses": {"200": _json(_ref("Readiness"), "Ready."),
                              "503": _json(_ref("Readiness"), "Database or broker unreachable.")}},
    },
}


def document() -> dict[str, Any]:
    responses = {f"E{s}": _json(_ref("Error"), text, _RETRY_AFTER if s in (429, 503) else None)
                 for s, text in ERRORS.items()}
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {"title": "dogbreed", "version": "1",
                 "description": "Asynchronous dog-breed classification: submit an image, poll or get a webhook."},
        "security": [{"apiKey": []}],
        "paths": PATHS,
        "webhooks": {"jobEnded": {"post": {
            "summary": "A job with a callback_url ended",
            "parameters": [{"name": "X-Dogbreed-Signature", "in": "header", "required": True, "schema": {"type": "string"},
                            "description": "sha256=<hex HMAC-SHA256 of the raw body, keyed with DOGBREED_WEBHOOK_SECRET>"}],
            "requestBody": {"content": {"application/json": {"schema": _ref("JobCore")}}},
            "responses": {"2XX": {"description": "Delivered. Anything else is retried with backoff."}},
        }}},
        "components": {
            "schemas": SCHEMAS,
            "responses": responses,
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer",
                                           "description": "`dogbreed keys create USER`; or a login session in a browser."}},
        },
    }


@bp.get("/api/v1/openapi.json")
def openapi_json():
    return jsonify(document())


@bp.get("/api/docs")
def docs_page():
    return render_template("docs.html")


@bp.get("/api/docs/assets/<path:filename>")
def docs_asset(filename: str):
    from swagger_ui_bundle import swagger_ui_path

    return send_from_directory(swagger_ui_path, filename, max_age=86400)
