"""The API described by hand as OpenAPI 3.1, served at /api/v1/openapi.json; /api/docs shows it.

The test suite checks every API response it gets against this document, so it cannot drift: every
object schema is closed, and its enums and limits are the code's own constants, imported from where
the code defines them. Error codes are listed per status; tests/web/test_openapi.py finds every code
the code raises and checks that it is here and in README's error table.
Swagger UI's files come from the `swagger-ui-bundle` pip package, never from a CDN.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, render_template, send_from_directory
from werkzeug.exceptions import BadRequest, MethodNotAllowed, NotFound

from shared import jobs, webhooks
from shared.breed_names import MAX_BREED_LENGTH
from shared.celeryconf import PIPELINE_TASKS
from shared.formats import ALLOWED_FORMATS
from shared.settings import Settings
from shared.tables import ID_LENGTH
from web import waiting
from web.api import DEFAULT_PER_PAGE, MAX_PAGE, MAX_PER_PAGE
from web.errors import http_error_code
from web.submit import MAX_IDEMPOTENCY_KEY

bp = Blueprint("docs", __name__)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        answer["headers"] = headers
    return answer


# Each error status: what it means, and every `error.code` answered with it (README's table says when).
ERRORS: dict[int, tuple[str, tuple[str, ...]]] = {
    400: ("A bad field, parameter or file; `error.message` names the fix.",
          ("missing_image", "too_many_files", "empty_file", "corrupt_image", "image_too_small", "too_many_scans", "too_complex",
           "csrf_failed", "bad_page", "bad_pipeline", "bad_filter", "bad_idempotency_key", "bad_callback_url",
           "webhooks_unavailable", "bad_label", "bad_breed", "bad_image_url", "bad_image_base64", "bad_wait",
           "bad_cancel_after", "bad_webhook_events", http_error_code(BadRequest()))),
    401: ("No API key or session, or a wrong key (when auth is on).", ("unauthorized", "invalid_api_key")),
    403: ("Not allowed for this user.", ("admin_only", "metrics_forbidden")),
    404: ("Not there, or not yours (the same answer).",
          ("job_not_found", "batch_not_found", "image_gone", http_error_code(NotFound()))),
    405: ("The path has no such method.", (http_error_code(MethodNotAllowed()),)),
    409: ("Conflicts with the resource's state.", ("job_finished", "idempotency_key_reused")),
    413: ("The upload is too large.", ("file_too_large", "image_too_large")),
    415: ("Not multipart/form-data, or not an image.", ("not_multipart", "not_an_image", "unsupported_format")),
    422: ("The image_url was fine but its fetch failed: `error.message` gives the reason (the HTTP status, "
          "a timeout, too large, not an image).", ("image_url_failed",)),
    429: ("Too many submissions this minute; see Retry-After.", ("rate_limited",)),
    500: ("Our fault; it has been logged.", ("internal_error",)),
    503: ("The database or the queue is unavailable, the queue is full, or this server holds as many waiting "
          "requests and streams as it may; see Retry-After.",
          ("queue_full", "queue_unavailable", "database_unavailable", "too_many_waiters")),
}
ERROR_CODES = sorted({code for _, codes in ERRORS.values() for code in codes})


def _errors(*statuses: int) -> dict[str, Any]:
    """The error answers a route may give, each the one error shape."""
    return {str(s): {"$ref": f"#/components/responses/E{s}"} for s in (*statuses, 500)}


_TIME = {"type": ["string", "null"], "format": "date-time"}
_RETRY_AFTER = {"Retry-After": {"schema": {"type": "string"}, "description": "Seconds to wait."}}
_LOCATION = {"Location": {"schema": {"type": "string", "format": "uri"}, "description": "The resource's API URL."}}
_ID = {"type": "string", "minLength": ID_LENGTH, "maxLength": ID_LENGTH, "pattern": "^[A-Za-z0-9_-]+$"}
_JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": _ID}
_BATCH_ID = {"name": "batch_id", "in": "path", "required": True, "schema": _ID}
_STATUSES = list(jobs.STATUSES)
_FORMATS = ", ".join(ALLOWED_FORMATS)


def _closed(required: list[str], properties: dict[str, Any], **more: Any) -> dict[str, Any]:
    """An object that names all of its fields: the checked test client fails on any other."""
    return {"type": "object", "required": required, "additionalProperties": False, "properties": properties, **more}


def _error(codes: list[str]) -> dict[str, Any]:
    """An API error's body, `code` one of those given."""
    return _closed(["code", "message"], {"code": {"enum": codes}, "message": {"type": "string"}})


_SCORED = {"type": "number", "minimum": 0, "maximum": 1}

SCHEMAS: dict[str, Any] = {
    "Error": _closed(["error"], {"error": _error(ERROR_CODES)}),
    "JobError": _closed(["code", "message"], {
        "code": {"type": "string", "description": "Why the job failed: an image code from the Error list "
                                                  "(the worker checks the stored image again), or e.g. "
                                                  "`image_missing`, `model_unavailable`, `too_many_attempts`; "
                                                  "`deadline_exceeded` on a job canceled by its Cancel-After."},
        "message": {"type": "string"}}),
    "Result": {
        "type": "object", "required": ["kind"], "additionalProperties": False,
        "description": f"What the classifier found. `kind` is `{jobs.NOOP_KIND}` for the benchmark pipeline, "
                       "with no other field.",
        "properties": {
            "kind": {"enum": [*jobs.KINDS, jobs.NOOP_KIND]},
            "sentence": {"type": "string"},
            "dog_score": _SCORED,
            "uncertain": {"type": "boolean", "description": "A dog whose breed the model is not sure of (the "
                                                           "sentence says so and names the closest breeds); "
                                                           "false for humans and others."},
            "breeds": {"type": "array", "items": _closed(["breed", "probability"],
                                                         {"breed": {"type": "string"}, "probability": _SCORED})},
            "faces": {"type": "array", "items": _closed(list("xywh"), {k: {"type": "integer"} for k in "xywh"})},
            "imagenet_top": {"type": "array", "items": _closed(["label", "probability"],
                                                               {"label": {"type": "string"}, "probability": _SCORED})},
            "model": _closed(["backbone", "weights", "head", "model_version", "faces"], {
                "backbone": {"type": "string"}, "weights": {"type": "string"}, "head": {"type": "string"},
                "model_version": {"type": ["string", "null"], "description": "The published breed model; null "
                                                                             "when none is active."},
                "faces": {"type": "string", "description": "The face detector."}}),
            "batch_size": {"type": "integer", "minimum": 1, "description": "Images in this one's forward pass."},
            "stages_ms": _closed([], {s: {"type": "number", "minimum": 0} for s in ("decode", "queue", "model", "faces")},
                                 description="Where the job's time went, in milliseconds."),
        },
    },
    "Webhook": {
        **_closed(["url", "status", "attempts", "last_error"], {
            "url": {"type": "string", "format": "uri"},
            "status": {"enum": list(webhooks.STATES)},
            "attempts": {"type": "integer", "minimum": 0},
            "last_error": {"type": ["string", "null"]}}),
        "type": ["object", "null"],
        "description": "Delivery of the job's JSON to its callback_url; null when it has none.",
    },
    "JobCore": {
        "type": "object",
        "required": ["id", "status", "batch_id", "created_at", "started_at", "finished_at", "attempts", "image",
                     "result", "error", "webhook", "cancel_after_at"],
        "description": "A job as the webhook sends it.",
        "properties": {
            "id": _ID,
            "status": {"enum": _STATUSES},
            "batch_id": {"oneOf": [_ID, {"type": "null"}]},
            "created_at": {"type": "string", "format": "date-time"},
            "started_at": _TIME, "finished_at": _TIME,
            "attempts": {"type": "integer", "minimum": 0},
            "image": _closed(["filename", "sha256", "bytes", "format", "width", "height"], {
                "filename": {"type": ["string", "null"]}, "sha256": {"type": "string"},
                "bytes": {"type": "integer"}, "format": {"enum": list(ALLOWED_FORMATS)},
                "width": {"type": "integer"}, "height": {"type": "integer"}}),
            "result": {"oneOf": [_ref("Result"), {"type": "null"}], "description": "Set when succeeded."},
            "error": {"oneOf": [_ref("JobError"), {"type": "null"}],
                      "description": "Set when failed, or canceled by its deadline (`deadline_exceeded`)."},
            "webhook": _ref("Webhook"),
            "cancel_after_at": {**_TIME, "description": "The Cancel-After deadline it was given; null when none."},
        },
    },
    "Job": {
        "allOf": [_ref("JobCore")],
        "type": "object", "required": ["url", "page_url", "image_url", "thumbnail_url", "label"],
        "unevaluatedProperties": False,
        "properties": {"url": {"type": "string", "format": "uri"}, "page_url": {"type": "string", "format": "uri"},
                       "image_url": {"type": "string", "format": "uri"},
                       "thumbnail_url": {"type": "string", "format": "uri",
                                         "description": "A JPEG of at most 256 px on its longest side (the "
                                                        "session's or key's access, as image_url)."},
                       "label": {"oneOf": [_ref("Label"), {"type": "null"}],
                                 "description": "A user's correction of the answer; null when there is none."}},
    },
    "Label": _closed(["kind", "breed", "labeled_at"], {
        "kind": {"enum": list(jobs.KINDS)},
        "breed": {"type": ["string", "null"], "maxLength": MAX_BREED_LENGTH,
                  "description": "The breed's canonical spelling (set when kind is dog): an ImageNet breed's "
                                 "common name, a breed labeled before, or the name as given, tidied."},
        "labeled_by": {"type": "string", "description": "The user who labeled it (absent when accounts are off)."},
        "labeled_at": {"type": "string", "format": "date-time"}}),
    "LabelBody": _closed([], {
        "breed": {"type": "string", "minLength": 1, "maxLength": MAX_BREED_LENGTH,
                  "description": "The right breed (the kind is then dog), known or new, e.g. `Shikoku`."},
        "kind": {"enum": list(jobs.KINDS), "description": "`neither` (not a dog) or `human` (a person); `dog` "
                                                         "only with a breed."}},
        description='`{"breed": "Shikoku"}`, `{"kind": "neither"}` or `{"kind": "human"}`.'),
    "Breeds": _closed(["model_version", "head", "breeds"], {
        "model_version": {"type": ["string", "null"], "description": "The active published model; null: none."},
        "head": {"type": "string", "description": "The breed head, as a result's `model.head` names it."},
        "breeds": {"type": "array", "items": _closed(["name"], {
            "name": {"type": "string"},
            "photos": {"type": "integer", "minimum": 0,
                       "description": "Only for a breed added by learning: the photos it was learned from."}})}}),
    "JobList": _closed(["jobs", "page", "per_page", "total", "pages", "next"], {
        "jobs": {"type": "array", "items": _ref("Job")},
        "page": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
        "per_page": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE},
        "total": {"type": "integer", "minimum": 0}, "pages": {"type": "integer", "minimum": 0},
        "next": {"type": ["string", "null"], "format": "uri"}}),
    "RejectedFile": _closed(["filename", "error"], {
        "filename": {"type": ["string", "null"]}, "error": _ref("Error/properties/error")},
        description="A file of an album that was refused; it keeps its place in the list."),
    "AlbumCore": {
        "type": "object", "required": ["id", "created_at", "summary", "jobs", "webhook"],
        "description": "An album as its webhook sends it.",
        "properties": {
            "id": _ID,
            "created_at": {"type": "string", "format": "date-time"},
            "summary": _closed([*_STATUSES, "rejected", "total", "done"], {
                **{s: {"type": "integer", "minimum": 0} for s in [*_STATUSES, "rejected", "total"]},
                "done": {"type": "boolean", "description": "No job is queued or running."}}),
            "jobs": {"type": "array", "items": {"oneOf": [_ref("JobCore"), _ref("RejectedFile")]}},
            "webhook": {**_ref("Webhook"), "description": "The album's one delivery; null without a callback_url."},
        },
    },
    "Album": {
        "allOf": [_ref("AlbumCore")],
        "type": "object", "required": ["url", "page_url"], "unevaluatedProperties": False,
        "properties": {"url": {"type": "string", "format": "uri"}, "page_url": {"type": "string", "format": "uri"},
                       "jobs": {"type": "array", "items": {"oneOf": [_ref("Job"), _ref("RejectedFile")]}}},
    },
    "Health": _closed(["status"], {"status": {"const": "ok"}}),
    "Readiness": _closed(["status", "checks", "workers"], {
        "status": {"enum": ["ready", "not_ready"]},
        "checks": _closed(["database", "broker"], {
            "database": {"type": "string", "description": "`ok`, or `unreachable: ` and the error's type."},
            "broker": {"type": "string"}}),
        "workers": _closed(["alive", "status"], {
            "alive": {"type": ["integer", "null"], "minimum": 0,
                      "description": "Workers with a live heartbeat; null when the broker cannot be asked."},
            "status": {"type": "string", "description": "`ok`, `unknown`, or why jobs will wait."}},
            description="Reported beside readiness: without a worker, jobs are accepted and wait in the queue.")}),
}

_IMAGE_URL = {"type": "string", "format": "uri",
              "description": "An http(s) URL the server fetches the image from (instead of a file): private "
                             "addresses are refused unless DOGBREED_IMAGE_URL_ALLOW_PRIVATE, redirects are checked "
                             "again, one DOGBREED_IMAGE_URL_TIMEOUT_S deadline, at most DOGBREED_MAX_UPLOAD_BYTES."}
_SUBMIT_FORM: dict[str, Any] = {
    "type": "object",
    "properties": {
        "image": {"type": "string", "contentMediaType": "application/octet-stream",
                  "description": f"One image: {_FORMATS} (known by its bytes, whatever its name says)."},
        "image_url": _IMAGE_URL,
        "callback_url": {"type": "string", "format": "uri",
                         "description": "POSTed the job's JSON when it ends, signed in X-Dogbreed-Signature."},
        "pipeline": {"enum": list(PIPELINE_TASKS), "description": "`noop` (admins): the queue path without the model."},
        "webhook_events": {"type": "string", "pattern": "^ *(completed|started)( *, *(completed|started))* *$",
                           "description": "What callback_url is sent: `completed` (always, the default) and "
                                          "`started` too; comma-separated or repeated (a bad one: 400 "
                                          "`bad_webhook_events`)."},
    },
    "description": "Either `image` (a file) or `image_url`.",
}
_SUBMIT_JSON: dict[str, Any] = {
    **_closed([], {
        "image_url": _IMAGE_URL,
        "image_base64": {"type": "string",
                         "description": "The image inline: a data URI (data:image/jpeg;base64,...) or bare base64; "
                                        "its bytes are checked as an upload's, whatever the URI's type says."},
        "callback_url": _SUBMIT_FORM["properties"]["callback_url"],
        "webhook_events": {"oneOf": [_SUBMIT_FORM["properties"]["webhook_events"],
                                     {"type": "array", "items": {"enum": ["completed", "started"]}}]}}),
    "oneOf": [{"required": ["image_url"]}, {"required": ["image_base64"]}],
}
_FILTERS = [
    {"name": "status", "in": "query", "schema": {"enum": _STATUSES}},
    {"name": "kind", "in": "query", "schema": {"enum": list(jobs.KINDS)}},
    {"name": "since", "in": "query", "schema": {"type": "string"},
     "description": "ISO 8601 date or time (UTC when no offset); jobs created at or after it."},
    {"name": "until", "in": "query", "schema": {"type": "string"},
     "description": "ISO 8601 date or time; jobs created before it (a date alone: to the end of that day)."},
    {"name": "labeled", "in": "query", "schema": {"enum": ["true", "false"]},
     "description": "true: only jobs a user labeled (corrected); false: only the others."},
    {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 1}},
    {"name": "per_page", "in": "query",
     "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE, "default": DEFAULT_PER_PAGE}},
]

_CANCEL_AFTER = {"name": "Cancel-After", "in": "header",
                 "schema": {"type": "string", "pattern": "^[1-9][0-9]{0,5}[smh]$", "examples": ["30s", "5m", "2h"]},
                 "description": "A deadline from now, at most a day (24h): a job not finished by then ends "
                                "`canceled` with error.code `deadline_exceeded` (a bad value: 400 `bad_cancel_after`)."}


def _idempotency_key(same: str, made: str) -> dict[str, Any]:
    return {"name": "Idempotency-Key", "in": "header",
            "schema": {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY},
            "description": f"Same key and {same} within 24 h: the first {made} again (200), not a new one; "
                           f"another {'image' if made == 'job' else made} with the key: 409."}


PATHS: dict[str, Any] = {
    "/api/v1/jobs": {
        "post": {
            "operationId": "submitJob", "summary": "Submit one image", "tags": ["jobs"],
            "parameters": [_idempotency_key("image", "job"), _CANCEL_AFTER],
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": _SUBMIT_FORM},
                                                          "application/json": {"schema": _SUBMIT_JSON}}},
            "responses": {"202": _json(_ref("Job"), "Accepted and queued.", _LOCATION),
                          "200": _json(_ref("Job"), "This Idempotency-Key already made this job.", _LOCATION),
                          **_errors(400, 401, 403, 409, 413, 415, 422, 429, 503)},
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
    "/api/v1/jobs/{job_id}/label": {
        "parameters": [_JOB_ID],
        "put": {"operationId": "labelJob", "summary": "Correct a job's answer: the right breed, or not a dog",
                "tags": ["labels"],
                "description": "The job's owner or an admin. A breed is stored in its canonical spelling, shown back "
                               "in the job's `label`; a second PUT replaces the label.",
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("LabelBody")}}},
                "responses": {"200": _json(_ref("Job"), "Labeled; the job with its `label`."),
                              **_errors(400, 401, 404, 503)}},
        "delete": {"operationId": "unlabelJob", "summary": "Withdraw a job's label", "tags": ["labels"],
                   "responses": {"200": _json(_ref("Job"), "The job, its `label` null (also when it had none)."),
                                 **_errors(400, 401, 404, 503)}},
    },
    "/api/v1/breeds": {
        "get": {"operationId": "listBreeds", "summary": "The breeds the active model can answer", "tags": ["labels"],
                "responses": {"200": _json(_ref("Breeds"), "The active model version and its breeds."),
                              **_errors(401, 503)}},
    },
    "/api/v1/batches": {
        "post": {
            "operationId": "submitBatch", "summary": "Submit an album (several `image` parts)", "tags": ["batches"],
            "parameters": [_idempotency_key("files in the same order", "album"), _CANCEL_AFTER],
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["image"],
                "properties": {"image": {"type": "array", "items": {"type": "string", "contentMediaType": "application/octet-stream"},
                                         "description": "Up to DOGBREED_MAX_FILES_PER_REQUEST (default "
                                                        f"{Settings.max_files_per_request}) images."},
                               "callback_url": {**_SUBMIT_FORM["properties"]["callback_url"],
                                                "description": "The album's: POSTed the album's JSON ONCE, when all "
                                                               "its jobs ended (none per image)."},
                               "webhook_events": _SUBMIT_FORM["properties"]["webhook_events"]}}}}},
            "responses": {"202": _json(_ref("Album"), "Accepted; a bad file is listed in place with its error.", _LOCATION),
                          "200": _json(_ref("Album"), "This Idempotency-Key already made this album.", _LOCATION),
                          **_errors(400, 401, 409, 413, 415, 429, 503)},
        },
    },
    "/api/v1/batches/{batch_id}": {
        "parameters": [_BATCH_ID],
        "get": {"operationId": "getBatch", "summary": "An album's jobs and summary", "tags": ["batches"],
                "responses": {"200": _json(_ref("Album"), "The album."), **_errors(401, 404, 503)}},
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

# Sync mode (`Prefer: wait`, `?wait=`) and pushed updates (event streams): web/waiting.py, web/events.py.
_WAITS = f"at most {waiting.MAX_WAIT_S} (more is taken as {waiting.MAX_WAIT_S})"
_PREFER = {"name": "Prefer", "in": "header", "schema": {"type": "string", "examples": ["wait=10", "wait"]},
           "description": f"`wait=N` (seconds, {_WAITS}; `wait` alone: {waiting.MAX_WAIT_S}): answer 200 with the "
                          "finished body if it ends within N s, else the usual 202 at N s. Beyond "
                          "DOGBREED_MAX_WAITERS waiting requests, the 202 comes at once, without Preference-Applied."}
_WAIT = {"name": "wait", "in": "query", "schema": {"type": "integer", "minimum": 0},
         "description": f"Long-poll: answer when it has ended, or after this many seconds ({_WAITS}), whichever "
                        "is first; woken by the change, never by polling."}
_APPLIED = {"Preference-Applied": {"schema": {"type": "string"}, "description": "`wait=N` when the request waited."}}
_STREAM = {"content": {"text/event-stream": {"schema": {"type": "string"}}}}
for _path, _method, _done in (("/api/v1/jobs", "post", "The job ended within the wait (`Prefer: wait`)."),
                              ("/api/v1/batches", "post", "Every job ended within the wait (`Prefer: wait`).")):
    _operation = PATHS[_path][_method]
    _operation.setdefault("parameters", []).append(_PREFER)
    for _status in ("200", "202"):
        if _status in _operation["responses"]:
            _operation["responses"][_status]["headers"] = {**_operation["responses"][_status]["headers"], **_APPLIED}
    if "200" in _operation["responses"]:
        _operation["responses"]["200"]["description"] += " Or: " + _done
    else:
        _operation["responses"]["200"] = _json(_ref("Album"), _done, {**_LOCATION, **_APPLIED})
    _operation["responses"].setdefault("400", {"$ref": "#/components/responses/E400"})
for _path in ("/api/v1/jobs/{job_id}", "/api/v1/batches/{batch_id}"):
    PATHS[_path]["get"].setdefault("parameters", []).append(_WAIT)
    PATHS[_path]["get"]["responses"].setdefault("400", {"$ref": "#/components/responses/E400"})
PATHS["/api/v1/jobs/{job_id}/events"] = {"parameters": [_JOB_ID], "get": {
    "operationId": "jobEvents", "summary": "A job's changes as server-sent events", "tags": ["jobs"],
    "responses": {"200": {"description": "`event: status` (data `{\"id\", \"status\"}`) at once and at each change, "
                                         "then `event: done` with the whole Job as data, and the stream closes.",
                          **_STREAM},
                  **_errors(401, 404, 503)}}}
PATHS["/api/v1/batches/{batch_id}/events"] = {"parameters": [_BATCH_ID], "get": {
    "operationId": "batchEvents", "summary": "An album's changes as server-sent events", "tags": ["batches"],
    "responses": {"200": {"description": "`event: status` (data `{\"id\", \"summary\"}`) at once and at each "
                                         "change, then `event: done` with the whole Album as data, and the stream "
                                         "closes.", **_STREAM},
                  **_errors(401, 404, 503)}}}


def _webhook(summary: str, schema: str) -> dict[str, Any]:
    return {"post": {
        "summary": summary,
        "parameters": [{"name": "X-Dogbreed-Signature", "in": "header", "required": True, "schema": {"type": "string"},
                        "description": "sha256=<hex HMAC-SHA256 of the raw body, keyed with DOGBREED_WEBHOOK_SECRET>"},
                       {"name": webhooks.EVENT_HEADER, "in": "header", "required": True,
                        "schema": {"enum": list(webhooks.EVENTS)}, "description": "Which event this delivery is."}],
        "requestBody": {"content": {"application/json": {"schema": _ref(schema)}}},
        "responses": {"2XX": {"description": "Delivered. Anything else is retried with backoff."}},
    }}


def document() -> dict[str, Any]:
    responses = {f"E{s}": _json(_closed(["error"], {"error": _error(list(codes))}),
                                f"{text} Codes: {', '.join(f'`{c}`' for c in codes)}.",
                                _RETRY_AFTER if s in (429, 503) else None)
                 for s, (text, codes) in ERRORS.items()}
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {"title": "dogbreed", "version": "1",
                 "description": "Asynchronous dog-breed classification: submit an image, poll or get a webhook."},
        "security": [{"apiKey": []}],
        "paths": PATHS,
        "webhooks": {"jobEnded": _webhook("A job with a callback_url ended (or started, if asked)", "JobCore"),
                     "albumEnded": _webhook("All jobs of an album with a callback_url ended (or its first started, "
                                            "if asked): one delivery for the album", "AlbumCore")},
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
