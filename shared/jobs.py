"""A job's life in the database: created queued, then forward only to running, succeeded, failed or canceled.

Every transition is one conditional UPDATE, so two deliveries of the same message cannot both
win: the second finds the row already moved on and does nothing (idempotent tasks).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import JSON, case, cast, exists, func, literal, null, select, text, update
from sqlalchemy.orm import Session

from shared import job_events
from shared.tables import Album, Job, Label, utcnow

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELED = "queued", "running", "succeeded", "failed", "canceled"
STATUSES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELED)
FINISHED = (SUCCEEDED, FAILED, CANCELED)
UNFINISHED = (QUEUED, RUNNING)
KINDS = ("dog", "human", "neither")
NOOP_KIND = "noop"  # the result of the benchmark pipeline, which runs the queue path without a model
# Session.info key: ids of jobs with a callback_url that ended in this transaction (see shared.webhooks).
ENDED_WITH_CALLBACK = "dogbreed.ended_with_callback"
# Session.info key: albums some of whose jobs ended in this transaction (their one webhook may be due).
ALBUMS_WITH_ENDS = "dogbreed.albums_with_ends"
# Session.info keys: jobs and albums whose work began in this transaction (a `started` webhook may be due).
STARTED_WITH_CALLBACK, ALBUMS_STARTED = "dogbreed.started_with_callback", "dogbreed.albums_started"
DEADLINE_EXCEEDED = "deadline_exceeded"  # error.code of a job canceled by its Cancel-After deadline
ADMISSION_LOCK_KEY = 0x646F6762  # "dogb": Postgres advisory lock held while a request admits jobs


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def iso(value: datetime | None) -> str | None:
    value = as_utc(value)
    return value.isoformat().replace("+00:00", "Z") if value else None


def create_job(session: Session, *, owner_id: int | None, sha256: str, size: int, fmt: str,
               width: int, height: int, filename: str | None, pipeline: str = "classify",
               album_id: str | None = None, idempotency_key: str | None = None, callback_url: str | None = None,
               lane: str | None = None, cancel_after_at: datetime | None = None,
               webhook_events: str | None = None) -> Job:
    job = Job(owner_id=owner_id, status=QUEUED, image_sha256=sha256, image_bytes=size, image_format=fmt,
              image_width=width, image_height=height, original_filename=(filename or "")[:255] or None,
              pipeline=pipeline, album_id=album_id, idempotency_key=idempotency_key, callback_url=callback_url,
              webhook_status="pending" if callback_url else None, lane=lane, cancel_after_at=cancel_after_at,
              webhook_events=webhook_events)
    session.add(job)
    session.flush()
    return job


def mark_enqueued(session: Session, job_ids: list[str]) -> None:
    """One statement for all the jobs whose messages just went out."""
    if job_ids:
        session.execute(update(Job).where(Job.id.in_(job_ids)).values(enqueued_at=utcnow())
                        .execution_options(synchronize_session=False))


@dataclass(frozen=True)
class Claimed:
    """What a worker needs of a job it now runs: its image, and which attempt this is."""

    id: str
    image_sha256: str
    image_format: str
    image_width: int
    image_height: int
    attempts: int


def _claimable(node: str) -> Any:
    """Queued, or running on this same node (its own retry after a passing fault): never a finished
    job, and never one another node runs (a duplicate message while that node lives)."""
    return (Job.status == QUEUED) | ((Job.status == RUNNING) & (Job.node == node))


def claim_chunk(session: Session, job_ids: list[str], node: str, max_attempts: int) -> list[Claimed]:
    """Move every claimable job of a chunk to running and count its attempt, in ONE statement.

    The row is re-checked by the UPDATE itself, so two deliveries of one message cannot both win on
    different nodes (PostgreSQL re-evaluates the WHERE after a concurrent commit; SQLite has one
    writer). Jobs that used all their attempts are failed here instead of looping forever; finding
    them costs a second statement only when some job of the chunk was not claimed.
    Returned in the chunk's order.
    """
    if not job_ids:
        return []
    node, now = node[:200], utcnow()
    rows = session.execute(
        update(Job)
        .where(Job.id.in_(job_ids), _claimable(node), Job.attempts < max_attempts, _within_deadline(now))
        .values(status=RUNNING, started_at=utcnow(), attempts=Job.attempts + 1, node=node)
        .returning(Job.id, Job.image_sha256, Job.image_format, Job.image_width, Job.image_height, Job.attempts,
                   Job.callback_url, Job.webhook_events, Job.album_id)
        .execution_options(synchronize_session=False)
    ).all()
    claimed = {row.id: Claimed(*row[:6]) for row in rows}
    for row in rows:
        job_events.note(session, row.id, row.album_id, RUNNING)
        if row.attempts == 1:  # its first start, not a retry's
            _note_start(session, row.id, row.callback_url, row.webhook_events, row.album_id)
    if len(claimed) < len(set(job_ids)):
        left = set(session.scalars(select(Job.id).where(Job.id.in_(set(job_ids) - set(claimed)), _claimable(node),
                                                        ~_within_deadline(now))))
        if left:  # past their Cancel-After deadline: they end here, not on the model
            cancel_past_deadline(session, list(left))
        spent = session.execute(select(Job.id, Job.attempts).where(
            Job.id.in_(set(job_ids) - set(claimed) - left), _claimable(node), Job.attempts >= max_attempts)).all()
        for job_id, attempts in spent:
            give_up(session, job_id, attempts)
    return [claimed[job_id] for job_id in dict.fromkeys(job_ids) if job_id in claimed]


def _within_deadline(now: datetime) -> Any:
    return Job.cancel_after_at.is_(None) | (Job.cancel_after_at > now)


def cancel_past_deadline(session: Session, job_ids: list[str] | None = None, limit: int = 500) -> list[str]:
    """Queued or running jobs past their Cancel-After deadline -> canceled with `deadline_exceeded`, in
    one statement: the given ones (a worker's chunk) or any (the sweep). A worker still running one
    has its result refused as after a cancel. Returns the ids that moved."""
    now = utcnow()
    where = [Job.status.in_(UNFINISHED), Job.cancel_after_at.is_not(None), Job.cancel_after_at <= now]
    if job_ids is None:
        job_ids = list(session.scalars(select(Job.id).where(*where).order_by(Job.cancel_after_at).limit(limit)))
    if not job_ids:
        return []
    rows = session.execute(
        update(Job).where(Job.id.in_(job_ids), *where)
        .values(status=CANCELED, finished_at=now, result=None, error_code=DEADLINE_EXCEEDED,
                error_message="Not finished by its Cancel-After deadline; nothing more will run for it.")
        .returning(Job.id, Job.callback_url, Job.album_id)
        .execution_options(synchronize_session=False)).all()
    for row in rows:
        _note_end(session, row.id, row.callback_url, row.album_id, CANCELED)
    return [row.id for row in rows]


def _note_start(session: Session, job_id: str, callback_url: str | None, events: str | None,
                album_id: str | None) -> None:
    if callback_url and events and "started" in events.split(","):
        session.info.setdefault(STARTED_WITH_CALLBACK, []).append(job_id)
    if album_id:
        session.info.setdefault(ALBUMS_STARTED, set()).add(album_id)


def _note_end(session: Session, job_id: str, callback_url: str | None, album_id: str | None, status: str) -> None:
    """What the committer announces: the job's new status to its waiters, its own webhook, and its
    album's (due once all its jobs ended)."""
    job_events.note(session, job_id, album_id, status)
    if callback_url:
        session.info.setdefault(ENDED_WITH_CALLBACK, []).append(job_id)
    if album_id:
        session.info.setdefault(ALBUMS_WITH_ENDS, set()).add(album_id)


def claim(session: Session, job_id: str, node: str, max_attempts: int) -> Claimed | None:
    """One job: a chunk of one, under the same rules; None when it is finished, gone, or another node's."""
    claimed = claim_chunk(session, [job_id], node, max_attempts)
    return claimed[0] if claimed else None


def succeed(session: Session, job_id: str, result: dict[str, Any]) -> bool:
    """Store the result; one that is not strict JSON (NaN, infinity) fails this job alone, with the
    reason, instead of failing the whole write batch on PostgreSQL and being retried as a blip."""
    try:
        json.dumps(result, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return fail(session, job_id, "invalid_result",
                    f"The classifier produced a result that cannot be stored ({exc}); resubmit the image, "
                    "and if it fails again, check the model.")
    kind = result.get("kind")
    return _finish(session, job_id, status=SUCCEEDED, result=result, result_kind=kind if kind in KINDS else None,
                   error_code=None, error_message=None)


def fail(session: Session, job_id: str, code: str, message: str) -> bool:
    return _finish(session, job_id, status=FAILED, result=None, error_code=code, error_message=message)


def cancel(session: Session, job_id: str) -> bool:
    """Queued or running -> canceled; False when it had already ended. A worker still running it
    later finds the row finished, and its result is refused by the same conditional UPDATE."""
    return _finish(session, job_id, status=CANCELED, result=None, error_code=None, error_message=None)


def _finish(session: Session, job_id: str, **values: Any) -> bool:
    """The one rule a job ends by (finish_many applies it to many at once): only from queued or
    running, so the first end wins and stays."""
    row = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(UNFINISHED))
        .values(finished_at=utcnow(), **values)
        .returning(Job.callback_url, Job.album_id)
        .execution_options(synchronize_session=False)
    ).first()
    if row is None:
        return False
    _note_end(session, job_id, row.callback_url, row.album_id, values["status"])
    return True


@dataclass(frozen=True)
class Ended:
    """A job one write ended, as its UPDATE returned it: what the metrics totals need, with no SELECT after."""

    id: str
    status: str
    result_kind: str | None
    created_at: datetime | None
    finished_at: datetime | None


def _storable(result: dict[str, Any]) -> str | None:
    """Why a result cannot be stored (NaN or infinity: PostgreSQL's json refuses them), or None."""
    try:
        json.dumps(result, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return str(exc)
    return None


def finish_many(session: Session, outcomes: list[tuple[str, dict[str, Any] | None, tuple[str, str] | None]]
                ) -> dict[str, Ended]:
    """End many jobs in ONE UPDATE (each column a CASE on the id), each with its result or its error.

    The same rule as `_finish`: only a queued or running job moves, so a canceled or already finished
    one keeps its one end; a result that cannot be stored fails that job alone. The first outcome of a
    job wins. Returns the jobs that moved, read back with RETURNING.
    """
    rows: dict[str, dict[str, Any]] = {}
    for job_id, result, error in outcomes:
        if job_id in rows:
            continue
        why = _storable(result) if result is not None and error is None else None
        if why is not None:
            error = ("invalid_result", f"The classifier produced a result that cannot be stored ({why}); "
                     "resubmit the image, and if it fails again, check the model.")
        if error is None:
            kind = (result or {}).get("kind")
            rows[job_id] = {"status": SUCCEEDED, "result": result, "result_kind": kind if kind in KINDS else None,
                            "error_code": None, "error_message": None}
        else:
            rows[job_id] = {"status": FAILED, "result": None, "result_kind": None,
                            "error_code": error[0], "error_message": error[1]}
    if not rows:
        return {}
    postgres = session.get_bind().dialect.name == "postgresql"

    def column(name: str) -> Any:
        def value(v: Any) -> Any:
            if name != "result":
                return literal(v, Job.__table__.c[name].type)
            value = null() if v is None else literal(v, JSON)  # SQL NULL: a failed job has no result
            # PostgreSQL types a CASE of bare parameters (or of NULLs alone) as text, which a json column refuses.
            return cast(value, JSON) if postgres else value
        return case({job_id: value(row[name]) for job_id, row in rows.items()}, value=Job.id)

    ended = session.execute(
        update(Job)
        .where(Job.id.in_(list(rows)), Job.status.in_(UNFINISHED))
        .values(finished_at=utcnow(), **{name: column(name) for name in next(iter(rows.values()))})
        .returning(Job.id, Job.status, Job.result_kind, Job.created_at, Job.finished_at, Job.callback_url,
                   Job.album_id)
        .execution_options(synchronize_session=False)
    ).all()
    for row in ended:
        _note_end(session, row.id, row.callback_url, row.album_id, row.status)
    return {row.id: Ended(row.id, row.status, row.result_kind, as_utc(row.created_at), as_utc(row.finished_at))
            for row in ended}


def give_up(session: Session, job_id: str, attempts: int) -> bool:
    """End a job whose workers kept dying before it finished, instead of looping forever."""
    return fail(session, job_id, "too_many_attempts",
                f"Gave up after {attempts} attempts; the workers kept stopping before it finished. "
                "Resubmit the image; if it fails again, check the worker logs.")


def requeue(session: Session, job_id: str) -> None:
    """Back to queued after its message was lost; the attempts made so far stay counted."""
    row = session.execute(update(Job).where(Job.id == job_id, Job.status.in_((QUEUED, RUNNING)))
                          .values(status=QUEUED, enqueued_at=utcnow()).returning(Job.album_id)).first()
    if row is not None:
        job_events.note(session, job_id, row.album_id, QUEUED)


def stale_jobs(session: Session, older_than_s: int, limit: int = 500) -> list[Job]:
    """Jobs that should have moved on by now: lost by the broker or by a dead worker."""
    cutoff = utcnow() - timedelta(seconds=older_than_s)
    stmt = (
        select(Job)
        .where(
            ((Job.status == QUEUED) & (func.coalesce(Job.enqueued_at, Job.created_at) < cutoff))
            | ((Job.status == RUNNING) & (Job.started_at < cutoff))
        )
        .order_by(Job.created_at)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def unsent_webhooks(session: Session, older_than_s: int, limit: int = 500) -> list[str]:
    """Ended jobs whose webhook never had an attempt: its message was lost, or the end was written
    by a process that does not enqueue webhooks (`dogbreed reap`)."""
    cutoff = utcnow() - timedelta(seconds=older_than_s)
    stmt = (select(Job.id).where(Job.status.in_(FINISHED), Job.webhook_status == "pending", Job.webhook_attempts == 0,
                                 Job.finished_at < cutoff).order_by(Job.finished_at).limit(limit))
    return list(session.scalars(stmt))


def running_jobs(session: Session, limit: int = 500) -> list[Job]:
    """Jobs some node says it is running, oldest first: the reaper checks that node is still alive."""
    stmt = select(Job).where(Job.status == RUNNING).order_by(Job.started_at).limit(limit)
    return list(session.scalars(stmt))


def orphans_of(session: Session, node: str, started_before: datetime) -> list[Job]:
    """Jobs a node was running before it (re)started: that process is gone, so nothing runs them."""
    stmt = select(Job).where(Job.status == RUNNING, Job.node == node[:200], Job.started_at < started_before)
    return list(session.scalars(stmt))


def queued_among(session: Session, job_ids: set[str]) -> list[Job]:
    """Of these jobs, the ones still waiting: a dead node received their messages but never started them."""
    if not job_ids:
        return []
    return list(session.scalars(select(Job).where(Job.id.in_(sorted(job_ids)), Job.status == QUEUED)))


def queued_before(session: Session, before: datetime, limit: int = 5000) -> list[Job]:
    """Queued jobs whose message was sent before `before`, oldest first."""
    stmt = (select(Job).where(Job.status == QUEUED, func.coalesce(Job.enqueued_at, Job.created_at) < before)
            .order_by(Job.created_at).limit(limit))
    return list(session.scalars(stmt))


def count_unfinished(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Job).where(Job.status.in_(UNFINISHED))) or 0


def take_admission_turn(session: Session) -> None:
    """Admit jobs one request at a time until this transaction ends: two requests that both count
    room for the last job must not both take it, and neither may refuse for rows the other takes back."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADMISSION_LOCK_KEY})
    else:  # SQLite has one writer at a time: an empty write takes that turn and holds it until commit.
        session.execute(update(Job).where(text("0")).values(status=Job.status))


def is_labeled() -> Any:
    """The job has a user's label (a correction in the labels table)."""
    return exists().where(Label.job_id == Job.id)


@dataclass(frozen=True)
class Filters:
    """History filters; created_at is compared with since (inclusive) and until (exclusive)."""

    status: str | None = None
    kind: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    labeled: bool | None = None  # True: only jobs a user labeled (corrected); False: only the others

    def conditions(self) -> list[Any]:
        found = []
        if self.status:
            found.append(Job.status == self.status)
        if self.kind:
            found.append(Job.result_kind == self.kind)
        if self.since:
            found.append(Job.created_at >= self.since)
        if self.until:
            found.append(Job.created_at < self.until)
        if self.labeled is not None:
            found.append(is_labeled() if self.labeled else ~is_labeled())
        return found


def history(session: Session, *, owner_id: int | None, page: int, per_page: int,
            filters: Filters = Filters()) -> tuple[list[Job], int]:
    """Newest first. owner_id None means every owner (admins, or auth switched off)."""
    conditions = filters.conditions()
    if owner_id is not None:
        conditions.append(Job.owner_id == owner_id)
    stmt = select(Job).where(*conditions)
    count = select(func.count()).select_from(Job).where(*conditions)
    total = session.scalar(count) or 0
    rows = session.scalars(stmt.order_by(Job.created_at.desc(), Job.id).offset((page - 1) * per_page).limit(per_page))
    return list(rows), total


def _owned_by(owner_id: int | None) -> Any:
    return Job.owner_id.is_(None) if owner_id is None else Job.owner_id == owner_id


def find_by_idempotency_key(session: Session, owner_id: int | None, key: str, within_s: int) -> Job | None:
    """The job this owner sent with this key within the window, if any."""
    cutoff = utcnow() - timedelta(seconds=within_s)
    stmt = select(Job).where(Job.idempotency_key == key, Job.created_at >= cutoff, _owned_by(owner_id))
    return session.scalars(stmt.order_by(Job.created_at).limit(1)).first()


def release_stale_key(session: Session, owner_id: int | None, key: str, within_s: int) -> None:
    """Free a key last used before the window, so it can name a new job (keys are unique per owner)."""
    cutoff = utcnow() - timedelta(seconds=within_s)
    session.execute(update(Job).where(Job.idempotency_key == key, Job.created_at < cutoff, _owned_by(owner_id))
                    .values(idempotency_key=None).execution_options(synchronize_session=False))


def albums_started(session: Session, album_ids: set[str]) -> list[str]:
    """Of these albums whose jobs just started, the ones whose callback asked for `started` and was
    not sent it yet: marked sent in the same statement, so only one transaction announces each."""
    if not album_ids:
        return []
    return list(session.scalars(
        update(Album).where(Album.id.in_(album_ids), Album.callback_url.is_not(None), Album.started_sent.is_(False),
                            Album.webhook_events.contains("started"))
        .values(started_sent=True).returning(Album.id).execution_options(synchronize_session=False)))


def albums_awaiting_webhook(session: Session, album_ids: set[str]) -> list[str]:
    """Of these albums, the ones whose webhook is still to be sent (done or not: the delivery checks)."""
    if not album_ids:
        return []
    return list(session.scalars(select(Album.id).where(Album.id.in_(album_ids), Album.webhook_status == "pending")))


def album_done(session: Session, album_id: str) -> bool:
    """No job of the album is queued or running."""
    return session.scalar(select(Job.id).where(Job.album_id == album_id, Job.status.in_(UNFINISHED)).limit(1)) is None


def unsent_album_webhooks(session: Session, older_than_s: int, limit: int = 100) -> list[str]:
    """Done albums whose webhook never had an attempt, their last job ended long ago: its message was
    lost, or the end was written by a process that does not announce (`dogbreed reap`)."""
    cutoff = utcnow() - timedelta(seconds=older_than_s)
    unfinished_or_recent = select(Job.id).where(Job.album_id == Album.id,
                                                Job.status.in_(UNFINISHED) | (Job.finished_at >= cutoff))
    return list(session.scalars(select(Album.id).where(
        Album.webhook_status == "pending", Album.webhook_attempts == 0, ~unfinished_or_recent.exists(),
        Album.created_at < cutoff).order_by(Album.created_at).limit(limit)))


def album_summary(album: Album, found: dict[str, Job]) -> tuple[list[Job | dict[str, Any]], dict[str, Any]]:
    """An album's entries in its order (a job, or a refused file's {"filename", "error"}) and the
    counts the API shows; one reading for the web's answer and the album's webhook."""
    entries: list[Job | dict[str, Any]] = []
    summary: dict[str, Any] = {status: 0 for status in STATUSES} | {"rejected": 0}
    for item in album.items:
        job = found.get(item.get("job_id", ""))
        if job is not None:
            entries.append(job)
            summary[job.status] += 1
        elif "error" in item:
            entries.append({"filename": item.get("filename"), "error": item["error"]})
            summary["rejected"] += 1
        # else: the job expired (retention) and is no longer listed
    summary["total"] = len(entries)
    summary["done"] = not any(summary[status] for status in UNFINISHED)
    return entries, summary


def album_to_dict(session: Session, album: Album) -> dict[str, Any]:
    """The album as its webhook sends it (the API adds its links)."""
    entries, summary = album_summary(album, album_jobs(session, album.id))
    return {"id": album.id, "created_at": iso(album.created_at), "summary": summary,
            "jobs": [to_dict(e) if isinstance(e, Job) else e for e in entries], "webhook": webhook_dict(album)}


def album_jobs(session: Session, album_id: str) -> dict[str, Job]:
    return {job.id: job for job in session.scalars(select(Job).where(Job.album_id == album_id))}


def webhook_dict(row: Job | Album) -> dict[str, Any] | None:
    """A job's or an album's webhook, as the API shows it (both rows have the same webhook columns)."""
    if not row.callback_url:
        return None
    return {"url": row.callback_url, "status": row.webhook_status, "attempts": row.webhook_attempts or 0,
            "last_error": row.webhook_last_error}


def to_dict(job: Job) -> dict[str, Any]:
    """The job as the API shows it."""
    data: dict[str, Any] = {
        "id": job.id,
        "status": job.status,
        "batch_id": job.album_id,  # the API's v1 name
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "attempts": job.attempts,
        "image": {
            "filename": job.original_filename,
            "sha256": job.image_sha256,
            "bytes": job.image_bytes,
            "format": job.image_format,
            "width": job.image_width,
            "height": job.image_height,
        },
        "result": job.result if job.status == SUCCEEDED else None,
        # failed, or canceled by its deadline (a user's cancel has no error)
        "error": {"code": job.error_code, "message": job.error_message}
        if job.status == FAILED or (job.status == CANCELED and job.error_code) else None,
        "cancel_after_at": iso(job.cancel_after_at),
        "webhook": webhook_dict(job),
    }
    return data
