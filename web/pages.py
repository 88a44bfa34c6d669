"""HTML pages: upload form, a job's or an album's page (poll the API until done), history, the image,
a job's correction ("Not right?") and the breeds we know."""
from __future__ import annotations

import io
from datetime import datetime, timezone

from flask import Blueprint, current_app, make_response, redirect, render_template, request, send_file, url_for

from shared import jobs, labels, thumbnails
from shared.formats import ALLOWED_FORMATS, MIME_TYPES
from shared.images import ImageError
from shared.stored import THUMBNAIL_EXTENSION, StoredImage
from web.access import get_album_or_404, get_job_or_404
from web.api import album_json, cancel_job, filter_args, history_filters, page_args
from web.auth import owner_id, owner_scope, require_user
from web.database import db
from web.errors import ApiError
from web.labels import breeds, parse_label, set_label, withdraw_label
from web.submit import submit, submit_album
from web.uploads import FIELD

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
        if len(request.files.getlist(FIELD)) > 1:
            album = submit_album(owner_id()).album
            return redirect(url_for("pages.album_page", album_id=album.id), code=303)
        job = submit(owner_id()).job
    except (ApiError, ImageError) as exc:
        status = getattr(exc, "status", 400)
        return render_template("index.html", error=exc.message), status
    return redirect(url_for("pages.job_page", job_id=job.id), code=303)


@bp.get("/batches/<album_id>")  # the path keeps the API's v1 name
def album_page(album_id: str):
    album = get_album_or_404(album_id)
    return render_template("album.html", album=album, album_data=album_json(album))


@bp.post("/jobs/<job_id>/cancel")
def cancel(job_id: str):
    """The Cancel button without JavaScript; the job page's script calls DELETE on the API instead."""
    try:
        cancel_job(get_job_or_404(job_id))
    except ApiError as exc:
        if exc.status != 409:
            raise
    return redirect(url_for("pages.job_page", job_id=job_id), code=303)


@bp.get("/jobs/<job_id>")
def job_page(job_id: str, error: str | None = None):
    job = get_job_or_404(job_id)
    label = labels.for_jobs(db(), [job.id]).get(job.id)
    return render_template("job.html", job=job, job_data=jobs.to_dict(job), label=label,
                           known=[b["name"] for b in breeds()["breeds"]], label_error=error)


@bp.post("/jobs/<job_id>/label")
def label(job_id: str):
    """The "Not right?" form: a breed (known or new), "not a dog", "a person", or withdraw the label."""
    job = get_job_or_404(job_id)
    try:
        if request.form.get("withdraw"):
            withdraw_label(job)
        else:
            kind = request.form.get("kind") or None
            set_label(job, *parse_label({"kind": kind} if kind else {"breed": request.form.get("breed", "")}))
    except ApiError as exc:
        if exc.status != 400:
            raise
        return job_page(job_id, error=exc.message), 400
    return redirect(url_for("pages.job_page", job_id=job_id), code=303)


@bp.get("/breeds")
def breeds_page():
    return render_template("breeds.html", **breeds())


def _send(image: StoredImage, mimetype: str, etag: str):
    response = make_response(send_file(image.stream, mimetype=mimetype, max_age=3600, conditional=True, etag=etag,
                                       last_modified=image.modified))
    response.content_length = image.size
    # Never let a browser treat an upload as a page or a script.
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Content-Disposition"] = "inline"
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


def _image_gone() -> ApiError:
    return ApiError("image_gone", "This job's image has expired and was deleted.", 404)


@bp.get("/jobs/<job_id>/image")
def job_image(job_id: str):
    job = get_job_or_404(job_id)
    store = current_app.extensions["image_store"]
    try:  # a local file or an S3 object, streamed through: the browser never talks to the bucket
        image = store.open(job.image_sha256, ALLOWED_FORMATS.get(job.image_format, "bin"))
    except FileNotFoundError:
        raise _image_gone() from None
    return _send(image, MIME_TYPES.get(job.image_format, "application/octet-stream"), job.image_sha256)


@bp.get("/jobs/<job_id>/thumbnail")
def job_thumbnail(job_id: str):
    """The small WebP beside the image; made now for an image stored before thumbnails existed."""
    job = get_job_or_404(job_id)
    store = current_app.extensions["image_store"]
    try:
        image = store.open(job.image_sha256, THUMBNAIL_EXTENSION)
    except FileNotFoundError:
        try:
            original = store.read(job.image_sha256, ALLOWED_FORMATS.get(job.image_format, "bin"))
        except FileNotFoundError:
            raise _image_gone() from None
        made = thumbnails.ensure(store, job.image_sha256, original, current_app.config["SETTINGS"].max_pixels)
        if made is None:
            return redirect(url_for("pages.job_image", job_id=job.id), code=302)
        image = StoredImage(io.BytesIO(made), len(made), datetime.now(timezone.utc))
    return _send(image, thumbnails.MIME_TYPE, f"{job.image_sha256}-thumb")


@bp.get("/history")
def history():
    page, per_page = page_args()
    try:
        filters = history_filters()
    except ApiError as exc:
        return render_template("history.html", jobs=[], page=1, pages=1, total=0, per_page=per_page, args={},
                               error=exc.message, statuses=jobs.STATUSES, kinds=jobs.KINDS, labels_of={}), 400
    rows, total = jobs.history(db(), owner_id=owner_scope(), page=page, per_page=per_page, filters=filters)
    pages = max(1, (total + per_page - 1) // per_page)
    return render_template("history.html", jobs=rows, page=page, pages=pages, total=total, per_page=per_page,
                           args=filter_args(), statuses=jobs.STATUSES, kinds=jobs.KINDS,
                           labels_of=labels.for_jobs(db(), [j.id for j in rows]))
