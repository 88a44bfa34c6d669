"""Accept jobs: validate, store the image, commit the rows, THEN enqueue their ids by their pipeline's task
(an album's as chunks of up to DOGBREED_MAX_BATCH ids per message)."""
from __future__ import annotations

import hashlib
import logging
import re
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterator, NamedTuple

from flask import current_app, request
from sqlalchemy.exc import IntegrityError

from shared import jobs, logs, thumbnails
from shared.celeryconf import chunk_task_for, chunk_task_id, lane_for, task_for
from shared.stored import THUMBNAIL_EXTENSION, Stored
from shared.tables import Album, Job, utcnow
from shared.webhooks import EVENTS, CallbackUrlError, check_callback_url, events_value
from web.database import db
from web.errors import ApiError
from web.image_intake import field, image_bytes, json_body, read_image
from web.metrics import JOBS_SUBMITTED
from web.queue import BrokerUnavailable, enqueue
from web.ratelimit import check_submission
from web.uploads import Upload, file_count, read_uploads, uploads_sha256

log = logging.getLogger(__name__)
IDEMPOTENCY_WINDOW_S = 24 * 3600
MAX_IDEMPOTENCY_KEY = 255
MAX_CANCEL_AFTER_S = 24 * 3600
_DURATION = re.compile(r"([1-9][0-9]{0,5})(s|m|h)")
_UNIT_S = {"s": 1, "m": 60, "h": 3600}


@dataclass
class Submitted:
    job: Job
    replayed: bool = False  # an earlier job answered for the same Idempotency-Key


def callback_url() -> str | None:
    """The submit form's callback_url, checked; None when not given."""
    url = field("callback_url")
    if not url:
        return None
    settings = current_app.config["SETTINGS"]
    if not settings.webhook_secret:
        raise ApiError("webhooks_unavailable",
                       "This server sends no webhooks: its operator has not set DOGBREED_WEBHOOK_SECRET. Poll the job instead.", 400)
    try:
        return check_callback_url(url, settings.webhook_allow_private)
    except CallbackUrlError as exc:
        raise ApiError("bad_callback_url", str(exc), 400) from None


def webhook_events(callback: str | None) -> str | None:
    """The form's (or JSON body's) webhook_events: which deliveries a callback_url gets, stored as
    shared.webhooks.events_value makes it (None: `completed` alone, the default)."""
    given = request.form.getlist("webhook_events") or request.args.getlist("webhook_events")
    body = json_body()
    if not given and body is not None:
        value = body.get("webhook_events")
        given = value if isinstance(value, list) else [value] if value is not None else []
    names = [name.strip() for value in given for name in str(value).split(",") if name.strip()]
    if not names:
        return None
    unknown = [name for name in names if name not in EVENTS]
    if unknown:
        raise ApiError("bad_webhook_events", f"webhook_events {', '.join(map(repr, unknown))}: use "
                       f"{' and/or '.join(EVENTS)} (comma-separated or repeated; completed is the default).", 400)
    if callback is None:
        raise ApiError("bad_webhook_events", "webhook_events needs a callback_url to send them to.", 400)
    return events_value(names)


def cancel_after() -> datetime | None:
    """The Cancel-After header (30s, 5m, 2h; at most a day) as the deadline it sets, from now."""
    value = request.headers.get("Cancel-After")
    if value is None:
        return None
    match = _DURATION.fullmatch(value.strip())
    seconds = int(match.group(1)) * _UNIT_S[match.group(2)] if match else 0
    if not 0 < seconds <= MAX_CANCEL_AFTER_S:
        raise ApiError("bad_cancel_after", f"Cancel-After {value[:40]!r}: a whole number of seconds, minutes or "
                       "hours, e.g. 30s, 5m or 2h, at most a day (24h).", 400)
    return utcnow() + timedelta(seconds=seconds)


def idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_IDEMPOTENCY_KEY or not key.isprintable():
        raise ApiError("bad_idempotency_key",
                       f"Idempotency-Key is 1 to {MAX_IDEMPOTENCY_KEY} printable characters, e.g. a UUID.", 400)
    return key


def _queue_full() -> ApiError:
    limit = current_app.config["SETTINGS"].max_queued_jobs
    return ApiError("queue_full", f"{limit} jobs are already waiting; try again shortly.", 503, {"Retry-After": "10"})


def _check_queue_room(wanted: int) -> None:
    """Cheap refusal before any image is stored."""
    if jobs.count_unfinished(db()) + wanted > current_app.config["SETTINGS"].max_queued_jobs:
        raise _queue_full()


def _store(uploads: list[Upload]) -> list[tuple[Stored, str]]:
    """Images (and their thumbnails) go to the store before the admission turn, so the turn is held only
    to count and insert."""
    store, max_pixels = current_app.extensions["image_store"], current_app.config["SETTINGS"].max_pixels
    stored = []
    for upload in uploads:
        image = store.store(upload.data, upload.info.extension)
        if not store.exists(image.sha256, THUMBNAIL_EXTENSION):  # the same bytes again: made already
            thumbnails.ensure(store, image.sha256, upload.data, max_pixels, upload.info.reduced)
        stored.append((image, upload.info.extension))
    return stored


def _add(upload: Upload, image: Stored, owner_id: int | None, **extra: Any) -> Job:
    return jobs.create_job(db(), owner_id=owner_id, sha256=image.sha256, size=len(upload.data), fmt=upload.info.format,
                           width=upload.info.width, height=upload.info.height, filename=upload.filename, **extra)


def _take_back(stored: list[tuple[Stored, str]]) -> None:
    """Delete the images of jobs that were not accepted after all, unless another job uses the same
    bytes or another upload stored them after us (its row may not be committed yet: the file's time says so)."""
    session, store = db(), current_app.extensions["image_store"]
    for image, extension in stored:
        if not session.query(Job.id).filter(Job.image_sha256 == image.sha256).first():
            store.discard(image.sha256, extension, image.mtime_ns)


@contextmanager
def _admission(wanted: int, stored: list[tuple[Stored, str]]) -> Iterator[None]:
    """The rows added inside are committed only while the queue has room for them: requests take turns
    to count and insert, so concurrent ones can neither overshoot the bound nor refuse for each other.
    Whatever fails, no image is left behind for rows that never were."""
    session = db()
    try:
        jobs.take_admission_turn(session)
        if jobs.count_unfinished(session) + wanted > current_app.config["SETTINGS"].max_queued_jobs:
            raise _queue_full()
        yield
        session.commit()
    except Exception:
        session.rollback()
        try:
            _take_back(stored)
        except Exception:  # the database is away: gc cannot know these files, but a failed clean-up must not hide why
            pass
        raise


def _take_back_rows(added: list[Job], stored: list[tuple[Stored, str]], album: Album | None) -> None:
    """Not accepted after all: the rows (and the images nobody else uses) go."""
    session = db()
    for job in added:
        session.delete(job)
    if album is not None:
        session.delete(album)
    session.commit()
    _take_back(stored)


def _chunks(added: list[Job], size: int) -> list[tuple[str, list[str]]]:
    """An album's jobs as messages of up to `size` job ids each, per pipeline: (task name, ids)."""
    by_pipeline: dict[str, list[str]] = {}
    for job in added:
        by_pipeline.setdefault(job.pipeline, []).append(job.id)
    return [(chunk_task_for(pipeline), ids[start:start + size])
            for pipeline, ids in by_pipeline.items() for start in range(0, len(ids), max(1, size))]


def _enqueue_all(added: list[Job], stored: list[tuple[Stored, str]], lane: str, album: Album | None = None) -> None:
    """Enqueue a single job by its pipeline's task, an album as one message per chunk of up to
    DOGBREED_MAX_BATCH ids, into `lane`; when the broker is away, take back every row before raising."""
    session = db()
    try:
        if album is None:
            for job in added:
                enqueue(task_for(job.pipeline), job.id, task_id=job.id, lane=lane)
        else:
            for index, (task_name, ids) in enumerate(_chunks(added, current_app.config["SETTINGS"].chunk_size)):
                enqueue(task_name, ids, task_id=chunk_task_id(album.id, index), lane=lane)
    except BrokerUnavailable:
        _take_back_rows(added, stored, album)
        raise
    jobs.mark_enqueued(session, [job.id for job in added])
    session.commit()
    JOBS_SUBMITTED.inc(len(added))
    for job in added:
        log.info("job %s accepted (%s, %d bytes)", job.id, job.image_format, job.image_bytes)


class SubmittedAlbum(NamedTuple):
    album: Album
    jobs: list[Job]
    replayed: bool = False  # an earlier album answered for the same Idempotency-Key


class _Earlier(Exception):
    """Inside the admission turn: a request with the same key committed first."""

    def __init__(self, job: Job) -> None:
        self.job = job


def _reused(key: str, earlier: Job, what: str) -> ApiError:
    return ApiError("idempotency_key_reused",
                    f"Idempotency-Key {key!r} was used in the last 24 h for another {what} (job {earlier.id}); "
                    f"use a new key for a new {what}.", 409)


def _replay(earlier: Job, data: bytes, key: str) -> Submitted:
    if earlier.album_id is not None or hashlib.sha256(data).hexdigest() != earlier.image_sha256:
        raise _reused(key, earlier, "image")
    return Submitted(earlier, replayed=True)


def _replay_album(earlier: Job, files: list[str | None], key: str) -> SubmittedAlbum:
    """The same key again: the first album, when these are its files in its order (by SHA-256)."""
    album = db().get(Album, earlier.album_id) if earlier.album_id else None
    if album is None or len(album.items) != len(files):
        raise _reused(key, earlier, "album")
    found = jobs.album_jobs(db(), album.id)
    for item, sha256 in zip(album.items, files):
        job = found.get(item.get("job_id") or "")
        if job is not None and sha256 != job.image_sha256:
            raise _reused(key, earlier, "album")
    return SubmittedAlbum(album, [found[item["job_id"]] for item in album.items if item.get("job_id") in found], True)


def _earlier(owner_id: int | None, key: str | None) -> Job | None:
    """The job this key already names; a key used before the window is freed for a new one."""
    if key is None:
        return None
    session = db()
    earlier = jobs.find_by_idempotency_key(session, owner_id, key, IDEMPOTENCY_WINDOW_S)
    if earlier is None:
        jobs.release_stale_key(session, owner_id, key, IDEMPOTENCY_WINDOW_S)
        session.commit()  # before the admission turn: a row lock held into it could deadlock with a request that has the turn
    return earlier


def _none_earlier(owner_id: int | None, key: str | None) -> None:
    """Checked again inside the admission turn, which requests take one at a time: of two requests with
    one key, the second finds the first's job (owner_id NULL, accounts off, is no unique index's business)."""
    earlier = jobs.find_by_idempotency_key(db(), owner_id, key, IDEMPOTENCY_WINDOW_S) if key else None
    if earlier is not None:
        raise _Earlier(earlier)


def submit(owner_id: int | None, pipeline: str = "classify") -> Submitted:
    """One image, one job, in the interactive lane (waited on or not). A repeated Idempotency-Key
    answers with the first job and costs nothing."""
    settings = current_app.config["SETTINGS"]
    session = db()
    key = idempotency_key()
    earlier = _earlier(owner_id, key)
    if earlier is not None and key is not None:
        return _replay(earlier, image_bytes(settings), key)  # before any decode or limit
    check_submission()
    _check_queue_room(1)
    callback = callback_url()
    events, deadline, lane = webhook_events(callback), cancel_after(), lane_for(album=False)
    upload = read_image(settings)
    stored = _store([upload])
    try:
        with _admission(1, stored):
            _none_earlier(owner_id, key)
            job = _add(upload, stored[0][0], owner_id, pipeline=pipeline, idempotency_key=key,
                       callback_url=callback, webhook_events=events, lane=lane, cancel_after_at=deadline)
    except _Earlier as found:
        return _replay(found.job, upload.data, key or "")
    except IntegrityError:
        # The same key arrived twice at once and the other request committed first.
        session.rollback()
        earlier = jobs.find_by_idempotency_key(session, owner_id, key, IDEMPOTENCY_WINDOW_S) if key else None
        if earlier is None or key is None:
            raise
        return _replay(earlier, upload.data, key)
    logs.job_id_var.set(job.id)
    _enqueue_all([job], stored, lane)
    return Submitted(job)


def submit_album(owner_id: int | None, wait: bool = False) -> SubmittedAlbum:
    """An album: every good file becomes a job; a bad one keeps its place with its error. Its
    callback_url is the album's: one delivery when all its jobs ended, none per image. `wait`: the
    caller waits for it in sync mode, so its images take the interactive lane. Its Idempotency-Key
    is kept on its first job; the same key again answers with this album."""
    settings = current_app.config["SETTINGS"]
    key = idempotency_key()
    earlier = _earlier(owner_id, key)
    if earlier is not None and key is not None:
        return _replay_album(earlier, uploads_sha256(settings.max_files_per_request, settings.max_upload_bytes), key)
    check_submission(max(1, min(file_count(), settings.max_files_per_request)))
    callback = callback_url()
    events, deadline, lane = webhook_events(callback), cancel_after(), lane_for(album=True, wait=wait)
    uploads = read_uploads(settings.max_files_per_request, settings.max_upload_bytes, settings.max_pixels)
    good = [upload for upload in uploads if isinstance(upload, Upload)]
    _check_queue_room(len(good))
    stored = _store(good)
    images = iter(stored)
    session = db()
    added: list[Job] = []
    try:
        with _admission(len(good), stored):
            _none_earlier(owner_id, key)
            album = Album(owner_id=owner_id, items=[], callback_url=callback, webhook_events=events,
                          webhook_status="pending" if callback else None)
            session.add(album)
            session.flush()
            items: list[dict[str, Any]] = []
            for upload in uploads:
                if isinstance(upload, Upload):
                    job = _add(upload, next(images)[0], owner_id, album_id=album.id, lane=lane,
                               cancel_after_at=deadline, idempotency_key=None if added else key)
                    added.append(job)
                    items.append({"job_id": job.id})
                else:
                    filename, error = upload
                    items.append({"filename": filename, "error": {"code": error.code, "message": error.message}})
            album.items = items
    except _Earlier as found:
        return _replay_album(found.job, [hashlib.sha256(u.data).hexdigest() if isinstance(u, Upload) else None
                                         for u in uploads], key or "")
    _enqueue_all(added, stored, lane, album)
    return SubmittedAlbum(album, added)
