"""JSON API under /api/v1: submit, poll, cancel, history, albums."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from flask import Blueprint, g, jsonify, request, url_for

from shared import jobs
from shared.celeryconf import TASK_ALBUM_WEBHOOK, TASK_WEBHOOK
from shared.tables import Album, Job
from shared.webhooks import announce_ended, note_albums_due
from web.access import get_album_or_404, get_job_or_404
from web.auth import auth_required, owner_id, owner_scope, require_user
from web.database import db
from web.errors import ApiError
from web.queue import enqueue
from web.submit import submit, submit_album

bp = Blueprint("api", __name__, url_prefix="/api/v1")
MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 20


def job_json(job: Job) -> dict[str, Any]:
    data = jobs.to_dict(job)
    data["url"] = url_for("api.get_job", job_id=job.id, _external=True)
    data["page_url"] = url_for("pages.job_page", job_id=job.id, _external=True)
    data["image_url"] = url_for("pages.job_image", job_id=job.id, _external=True)
    return data


MAX_PAGE = 1_000_000  # the offset must fit the database's integer


def page_args() -> tuple[int, int]:
    try:
        page = int(request.args.get("page", 1))
        per_page = int(request.args.get("per_page", DEFAULT_PER_PAGE))
    except ValueError:
        raise ApiError("bad_page", "page and per_page must be whole numbers.", 400) from None
    if not 1 <= page <= MAX_PAGE or not 1 <= per_page <= MAX_PER_PAGE:
        raise ApiError("bad_page", f"page is 1 to {MAX_PAGE:,}; per_page is 1 to {MAX_PER_PAGE}.", 400)
    return page, per_page


def _when(name: str) -> datetime | None:
    raw = (request.args.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.replace(" ", "+") if "T" in raw else raw)
    except ValueError:
        raise ApiError("bad_filter", f"{name}={raw!r} is not a date or time; use ISO 8601, "
                                     "e.g. 2026-11-30 or 2026-11-30T08:00:00Z.", 400) from None
    if name == "until" and "T" not in raw and len(raw) == 10:
        value += timedelta(days=1)  # a date alone: until the end of that day
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


FILTER_ARGS = ("status", "kind", "since", "until")


def filter_args() -> dict[str, str]:
    """The history filters given in the query string, as given: kept in the next page's link."""
    return {k: v for k, v in request.args.items() if k in FILTER_ARGS and v}


def history_filters() -> jobs.Filters:
    """status, kind, since, until from the query string; a bad value is a 400 naming the choices."""
    status = (request.args.get("status") or "").strip() or None
    kind = (request.args.get("kind") or "").strip() or None
    if status and status not in jobs.STATUSES:
        raise ApiError("bad_filter", f"status={status!r}: use one of {', '.join(jobs.STATUSES)}.", 400)
    if kind and kind not in jobs.KINDS:
        raise ApiError("bad_filter", f"kind={kind!r}: use one of {', '.join(jobs.KINDS)}.", 400)
    since, until = _when("since"), _when("until")
    if since and until and since >= until:
        raise ApiError("bad_filter", "since must be before until.", 400)
    return jobs.Filters(status=status, kind=kind, since=since, until=until)


def cancel_job(job: Job) -> Job:
    session = db()
    if not jobs.cancel(session, job.id):
        session.rollback()
        session.refresh(job)
        raise ApiError("job_finished", f"Job {job.id} already ended ({job.status}); only queued or running jobs can be canceled.", 409)
    note_albums_due(session)  # the album's one webhook may be due now that this job ended
    session.commit()
    announce_ended(session, lambda job_id, event: enqueue(TASK_WEBHOOK, job_id, more=(event,)),
                   lambda album_id, event: enqueue(TASK_ALBUM_WEBHOOK, album_id, more=(event,)))
    session.refresh(job)
    return job


def album_json(album: Album) -> dict[str, Any]:
    entries, summary = jobs.album_summary(album, jobs.album_jobs(db(), album.id))
    return {"id": album.id, "created_at": jobs.iso(album.created_at),
            "url": url_for("api.get_album", batch_id=album.id, _external=True),
            "page_url": url_for("pages.album_page", album_id=album.id, _external=True),
            "summary": summary, "jobs": [job_json(e) if isinstance(e, Job) else e for e in entries],
            "webhook": jobs.album_webhook_dict(album)}


@bp.before_request
def _auth() -> None:
    require_user()


@bp.post("/jobs")
def create_job():
    submitted = submit(owner_id(), pipeline_name())
    body = job_json(submitted.job)
    return jsonify(body), 200 if submitted.replayed else 202, {"Location": body["url"]}


def pipeline_name() -> str:
    """`pipeline=noop` runs the queue and database path without the model (for `dogbreed bench`)."""
    pipeline = request.args.get("pipeline") or request.form.get("pipeline") or "classify"
    if pipeline == "classify":
        return pipeline
    if pipeline != "noop":
        raise ApiError("bad_pipeline", "pipeline is 'classify' (the default) or 'noop'.", 400)
    user = g.get("user")
    if auth_required() and not (user and user.is_admin):
        raise ApiError("admin_only", "The no-op pipeline is for benchmarks by an admin.", 403)
    return pipeline


@bp.get("/jobs/<job_id>")
def get_job(job_id: str):
    return jsonify(job_json(get_job_or_404(job_id)))


@bp.delete("/jobs/<job_id>")
def delete_job(job_id: str):
    return jsonify(job_json(cancel_job(get_job_or_404(job_id))))


@bp.get("/jobs")
def list_jobs():
    page, per_page = page_args()
    filters = history_filters()
    rows, total = jobs.history(db(), owner_id=owner_scope(), page=page, per_page=per_page, filters=filters)
    pages = (total + per_page - 1) // per_page
    kept = filter_args()
    return jsonify(
        jobs=[job_json(j) for j in rows], page=page, per_page=per_page, total=total, pages=pages,
        next=url_for("api.list_jobs", page=page + 1, per_page=per_page, **kept, _external=True) if page < pages else None,
    )


@bp.post("/batches")  # /batches and batch_id: the API's v1 names for albums
def create_album():
    album, _ = submit_album(owner_id())
    body = album_json(album)
    return jsonify(body), 202, {"Location": body["url"]}


@bp.get("/batches/<batch_id>")
def get_album(batch_id: str):
    return jsonify(album_json(get_album_or_404(batch_id)))
