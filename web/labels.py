"""Corrections and the breeds we know, on the API: PUT/DELETE /api/v1/jobs/<id>/label, GET /api/v1/breeds.

The routes sit on the API's blueprint, so they share its login rule and its errors; the data layer is
shared/labels.py (a label's canonical breed, who and when) and shared/model_versions.served_breeds.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import current_app, g, jsonify, request

from shared import labels
from shared.jobs import KINDS
from shared.model_versions import served_breeds
from shared.tables import Job
from web.access import get_job_or_404
from web.api import bp as bp  # re-exported: web/app.py registers the API's blueprint with these routes on it
from web.api import job_json
from web.database import db
from web.errors import ApiError

FIELDS = ("kind", "breed")
NOT_DOGS = tuple(k for k in KINDS if k != labels.DOG)


def parse_label(body: Any) -> tuple[str, str | None]:
    """(kind, breed) from `{"breed": "Shikoku"}` (a dog), `{"kind": "neither"}` or `{"kind": "human"}`."""
    if not isinstance(body, Mapping):
        raise ApiError("bad_label", 'Send a JSON object: {"breed": "Shikoku"}, {"kind": "neither"} or {"kind": "human"}.', 400)
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise ApiError("bad_label", f"Unknown field(s) {', '.join(unknown)}: a label has only kind and breed.", 400)
    kind, breed = body.get("kind"), body.get("breed")
    if breed is not None and not isinstance(breed, str):
        raise ApiError("bad_label", 'breed is the breed\'s name as text, e.g. "Shikoku".', 400)
    if breed is not None and breed.strip():
        if kind not in (None, labels.DOG):
            raise ApiError("bad_label", f"A breed means the kind is dog, not {kind!r}; send the breed alone.", 400)
        return labels.DOG, breed
    if kind == labels.DOG or (kind is None and breed is not None):
        raise ApiError("bad_breed", "Name the dog's breed, e.g. {\"breed\": \"Shikoku\"}.", 400)
    if kind not in NOT_DOGS:
        raise ApiError("bad_label", f"kind is one of {', '.join(NOT_DOGS)} (for a dog, send its breed).", 400)
    return str(kind), None


def set_label(job: Job, kind: str, breed: str | None) -> None:
    """Store the owner's (or an admin's) correction of `job`, committed."""
    session = db()
    user = g.get("user")
    try:
        labels.put(session, job.id, kind=kind, breed=breed, user_id=user.id if user else None)
    except labels.BadBreed as exc:
        session.rollback()
        raise ApiError("bad_breed", exc.message, 400) from None
    session.commit()


def withdraw_label(job: Job) -> None:
    labels.delete(db(), job.id)
    db().commit()


def breeds() -> dict[str, Any]:
    """What GET /api/v1/breeds answers; the upload and job pages show the same list."""
    return served_breeds(db(), current_app.config["SETTINGS"].model_dir)


@bp.put("/jobs/<job_id>/label")
def put_label(job_id: str):
    job = get_job_or_404(job_id)
    set_label(job, *parse_label(request.get_json(silent=True)))
    return jsonify(job_json(job))


@bp.delete("/jobs/<job_id>/label")
def delete_label(job_id: str):
    job = get_job_or_404(job_id)
    withdraw_label(job)
    return jsonify(job_json(job))


@bp.get("/breeds")
def list_breeds():
    return jsonify(breeds())
