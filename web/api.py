"""JSON API under /api/v1: submit, poll, history."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify, request, url_for

from shared import jobs
from shared.celeryconf import TASK_CLASSIFY, TASK_NOOP
from shared.tables import Job
from web.access import get_job_or_404
from web.auth import auth_required, owner_id, owner_scope, require_user
from web.database import db
from web.errors import ApiError
from web.submit import submit

bp = Blueprint("api", __name__, url_prefix="/api/v1")
MAX_PER_PAGE = 100


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
        per_page = int(request.args.get("per_page", 20))
    except ValueError:
        raise ApiError(400, "bad_page", "page and per_page must be whole numbers.") from None
    if not 1 <= page <= MAX_PAGE or not 1 <= per_page <= MAX_PER_PAGE:
        raise ApiError(400, "bad_page", f"page is 1 to {MAX_PAGE:,}; per_page is 1 to {MAX_PER_PAGE}.")
    return page, per_page


@bp.before_request
def _auth() -> None:
    require_user()


@bp.post("/jobs")
def create_job():
    job = submit(owner_id(), pipeline_task())
    body = {"id": job.id, "status": job.status, "url": url_for("api.get_job", job_id=job.id, _external=True),
            "page_url": url_for("pages.job_page", job_id=job.id, _external=True)}
    return jsonify(body), 202, {"Location": body["url"]}


def pipeline_task() -> str:
    """`pipeline=noop` runs the queue and database path without the model (for `dogbreed bench`)."""
    pipeline = request.args.get("pipeline") or request.form.get("pipeline") or "classify"
    if pipeline == "classify":
        return TASK_CLASSIFY
    if pipeline != "noop":
        raise ApiError(400, "bad_pipeline", "pipeline is 'classify' (the default) or 'noop'.")
    user = g.get("user")
    if auth_required() and not (user and user.is_admin):
        raise ApiError(403, "admin_only", "The no-op pipeline is for benchmarks by an admin.")
    return TASK_NOOP


@bp.get("/jobs/<job_id>")
def get_job(job_id: str):
    return jsonify(job_json(get_job_or_404(job_id)))


@bp.get("/jobs")
def list_jobs():
    page, per_page = page_args()
    rows, total = jobs.history(db(), owner_id=owner_scope(), page=page, per_page=per_page)
    pages = (total + per_page - 1) // per_page
    return jsonify(
        jobs=[job_json(j) for j in rows], page=page, per_page=per_page, total=total, pages=pages,
        next=url_for("api.list_jobs", page=page + 1, per_page=per_page, _external=True) if page < pages else None,
    )
