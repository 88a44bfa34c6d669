"""JSON API under /api/v1: submit, poll, cancel, history, albums (labels and breeds: web/labels.py)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from flask import Blueprint, g, jsonify, request, url_for

from shared import jobs, labels
from shared.celeryconf import TASK_ALBUM_WEBHOOK, TASK_WEBHOOK
from shared.tables import Album, Job
from shared.webhooks import announce_ended, note_albums_due
from web import waiting
from web.access import get_album_or_404, get_job_or_404
from web.auth import auth_required, owner_id, owner_scope, require_user
from web.database import db
from web.errors import ApiError
from web.queue import enqueue
from web.submit import submit, submit_album

bp = Blueprint("api", __name__, url_prefix="/api/v1")
MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 20


def job_json(job: Job, labels_of: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The job as the API shows it; `labels_of` (labels.for_jobs) saves a query per job in a list."""
    data = jobs.to_dict(job)
    data["url"] = url_for("api.get_job", job_id=job.id, _external=True)
    data["page_url"] = url_for("pages.job_page", job_id=job.id, _external=True)
    data["image_url"] = url_for("pages.job_image", job_id=job.id, _external=True)
    data["label"] = (labels_of if labels_of is not None else labels.for_jobs(db(), [job.id])).get(job.id)
    data["thumbnail_url"] = url_for("pages.job_thumbnail", job_id=job.id, _external=True)
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
    try:
        if name == "until" and "T" not in raw and len(raw) == 10:
            value += timedelta(days=1)  # a date alone: until the end of that day
        # In UTC: SQLite compares the stored UTC text, so an offset left on the bound would shift it.
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    except OverflowError:  # past 9999-12-31 or before year 1 in UTC: no bound on that side
        return None


FILTER_ARGS = ("status", "kind", "since", "until", "labeled")
LABELED = {"true": True, "false": False}


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
    labeled = (request.args.get("labeled") or "").strip().lower() or None
    if labeled and labeled not in LABELED:
        raise ApiError("bad_filter", f"labeled={labeled!r}: use true (jobs with a user's label) or false.", 400)
    since, until = _when("since"), _when("until")
    if since and until and since >= until:
        raise ApiError("bad_filter", "since must be before until.", 400)
    return jobs.Filters(status=status, kind=kind, since=since, until=until,
                        labeled=LABELED[labeled] if labeled else None)


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
    waiting.hub().publish(session)  # wakes this job's waiters, in every web process
    session.refresh(job)
    return job


def album_json(album: Album) -> dict[str, Any]:
    found = jobs.album_jobs(db(), album.id)
    labels_of = labels.for_jobs(db(), list(found))
    entries, summary = jobs.album_summary(album, found)
    return {"id": album.id, "created_at": jobs.iso(album.created_at),
            "url": url_for("api.get_album", batch_id=album.id, _external=True),
            "page_url": url_for("pages.album_page", album_id=album.id, _external=True),
            "summary": summary, "jobs": [job_json(e, labels_of) if isinstance(e, Job) else e for e in entries],
            "webhook": jobs.webhook_dict(album)}


def job_ended(body: dict[str, Any]) -> bool:
    return body["status"] in jobs.FINISHED


def album_done(body: dict[str, Any]) -> bool:
    return bool(body["summary"]["done"])


@bp.before_request
def _auth() -> None:
    require_user()


@bp.post("/jobs")
def create_job():
    seconds = waiting.prefer_wait()  # read first: a bad Prefer is refused before anything is stored
    submitted = submit(owner_id(), pipeline_name())
    job_id = submitted.job.id
    return _submitted(f"job:{job_id}", lambda: job_json(get_job_or_404(job_id)), job_ended, seconds,
                      200 if submitted.replayed else 202)


def _submitted(channel: str, read: Callable[[], dict[str, Any]], ended: Callable[[dict[str, Any]], bool],
               seconds: int | None, status: int):
    """A submit's answer: at once (202, or 200 for a replay), or in sync mode once it ended (200 with
    Preference-Applied) or when the wait ran out (the same 202)."""
    if seconds is None:
        body = read()
        return jsonify(body), status, {"Location": body["url"]}
    body, waited = waiting.until([channel], read, ended, seconds)
    headers = {"Location": body["url"], **(waiting.applied(seconds) if waited else {})}
    return jsonify(body), 200 if ended(body) else status, headers


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
    return _current(f"job:{job_id}", lambda: job_json(get_job_or_404(job_id)), job_ended)


def _current(channel: str, read: Callable[[], dict[str, Any]], ended: Callable[[dict[str, Any]], bool]):
    """A job or album as it is, or with `?wait=N` as it is when it ends or when N runs out."""
    seconds = waiting.query_wait()
    body = read()  # a 404 at once, before any slot is taken
    if seconds is not None:
        body, _ = waiting.until([channel], read, ended, seconds)
    return jsonify(body)


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
    labels_of = labels.for_jobs(db(), [j.id for j in rows])
    return jsonify(
        jobs=[job_json(j, labels_of) for j in rows], page=page, per_page=per_page, total=total, pages=pages,
        next=url_for("api.list_jobs", page=page + 1, per_page=per_page, **kept, _external=True) if page < pages else None,
    )


@bp.post("/batches")  # /batches and batch_id: the API's v1 names for albums
def create_album():
    seconds = waiting.prefer_wait()
    submitted = submit_album(owner_id(), wait=seconds is not None)
    album_id = submitted.album.id
    return _submitted(f"batch:{album_id}", lambda: album_json(get_album_or_404(album_id)), album_done, seconds,
                      200 if submitted.replayed else 202)


@bp.get("/batches/<batch_id>")
def get_album(batch_id: str):
    return _current(f"batch:{batch_id}", lambda: album_json(get_album_or_404(batch_id)), album_done)
