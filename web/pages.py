"""HTML pages: upload form, the job's page (polls the API until done), history, the image itself."""
from __future__ import annotations

from flask import Blueprint, current_app, make_response, redirect, render_template, send_file, url_for

from shared import jobs
from shared.images import ALLOWED_FORMATS, MIME_TYPES, ImageError
from web.access import get_job_or_404
from web.api import page_args
from web.auth import owner_id, owner_scope, require_user
from web.database import db
from web.errors import ApiError
from web.submit import submit

bp = Blueprint("pages", __name__)


@bp.before_request
def _auth() -> None:
    require_user()


@bp.get("/")
def index():
    return render_template("index.html")


@bp.post("/")
def upload():
    try:
        job = submit(owner_id())
    except (ApiError, ImageError) as exc:
        status = getattr(exc, "status", 400)
        return render_template("index.html", error=exc.message), status
    return redirect(url_for("pages.job_page", job_id=job.id), code=303)


@bp.get("/jobs/<job_id>")
def job_page(job_id: str):
    job = get_job_or_404(job_id)
    return render_template("job.html", job=job, job_data=jobs.to_dict(job))


@bp.get("/jobs/<job_id>/image")
def job_image(job_id: str):
    job = get_job_or_404(job_id)
    store = current_app.extensions["image_store"]
    try:  # a local file or an S3 object, streamed through: the browser never talks to the bucket
        image = store.open(job.image_sha256, ALLOWED_FORMATS.get(job.image_format, "bin"))
    except FileNotFoundError:
        raise ApiError(404, "image_gone", "This job's image has expired and was deleted.") from None
    response = make_response(send_file(image.stream, mimetype=MIME_TYPES.get(job.image_format, "application/octet-stream"),
                                       max_age=3600, conditional=True, etag=job.image_sha256,
                                       last_modified=image.modified))
    response.content_length = image.size
    # Never let a browser treat an upload as a page or a script.
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Content-Disposition"] = "inline"
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


@bp.get("/history")
def history():
    page, per_page = page_args()
    rows, total = jobs.history(db(), owner_id=owner_scope(), page=page, per_page=per_page)
    pages = max(1, (total + per_page - 1) // per_page)
    return render_template("history.html", jobs=rows, page=page, pages=pages, total=total, per_page=per_page)
