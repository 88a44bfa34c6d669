"""Webhook delivery as its own Celery task (`dogbreed.webhook`), never on the inference threads.

When a session that ended jobs with a callback_url commits (the result writer, the reaper), their
ids are enqueued here. Each attempt POSTs the job's JSON, signed with DOGBREED_WEBHOOK_SECRET, and
is recorded on the row; failures and non-2xx answers (and database blips) retry through Celery's
own backoff, with jitter (worker/retry.py).

An album with a callback_url gets ONE `completed` delivery (`dogbreed.album_webhook`), the album's
JSON, once all its jobs ended; each commit that ends some of its jobs announces it, and the delivery
that finds it done claims the attempt with a conditional UPDATE, so concurrent announcements send it
once. A `started` delivery (webhook_events) goes once when a job, or an album's first job, starts;
it is not recorded on the row. `X-Dogbreed-Event` says which.
"""
from __future__ import annotations

import json
import logging

from celery import Celery
from sqlalchemy import event, update
from sqlalchemy.orm import Session, sessionmaker

from shared import jobs, outbound, webhooks
from shared.celeryconf import PUBLISH_RETRY_POLICY, TASK_ALBUM_WEBHOOK, TASK_WEBHOOK
from shared.db import session_scope
from shared.settings import Settings
from shared.tables import Album, Job
from worker.retry import retry_options

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 600


class DeliveryFailed(Exception):
    """This attempt did not reach a 2xx answer; the row says so, and Celery tries again later."""


ANSWER_BYTES = 4096  # of a receiver's answer we read (the status is what counts), the rest is never read


def post(target: outbound.Target, body: bytes, secret: str, timeout_s: int, event: str = webhooks.COMPLETED) -> str | None:
    """One attempt, all of it within `timeout_s`, to the addresses the check resolved; no redirect is
    followed (a 3xx is not a delivery). None when the receiver answered 2xx, else what went wrong."""
    headers = {"Content-Type": "application/json", "User-Agent": "dogbreed-webhook/1",
               webhooks.SIGNATURE_HEADER: webhooks.sign(body, secret), webhooks.EVENT_HEADER: event}
    try:
        answer = outbound.send(target, "POST", body, headers, timeout_s=timeout_s, max_bytes=ANSWER_BYTES)
    except outbound.FetchFailed as exc:
        return f"{exc.kind}: {exc}"[:500]
    if 200 <= answer.status < 300:
        return None
    return f"HTTP {answer.status}: {answer.body[:200].decode('utf-8', 'replace')}"


def _attempt(settings: Settings, url: str, body: bytes, event: str) -> tuple[str | None, bool]:
    """One POST: what went wrong (None: delivered), and whether that is final (no retry can help)."""
    if not settings.webhook_secret:
        return "DOGBREED_WEBHOOK_SECRET is not set on the worker; nothing was sent unsigned.", True
    try:
        target = webhooks.callback_target(url, settings.webhook_allow_private)
    except webhooks.CallbackUrlError as exc:
        return str(exc), True
    return post(target, body, settings.webhook_secret, settings.webhook_timeout_s, event), False


def register(app: Celery, settings: Settings, sessions: sessionmaker) -> None:
    def send(task: str, thing_id: str, event: str) -> None:
        args = [thing_id] if event == webhooks.COMPLETED and task == TASK_WEBHOOK else [thing_id, event]
        app.send_task(task, args=args, queue=settings.queue, retry=True, retry_policy=PUBLISH_RETRY_POLICY)

    # Every session of this worker process: the result writer's and the reaper's alike.
    event.listen(Session, "before_commit", webhooks.note_albums_due)
    event.listen(Session, "after_commit", lambda session: webhooks.announce_ended(
        session, lambda job_id, name: send(TASK_WEBHOOK, job_id, name),
        lambda album_id, name: send(TASK_ALBUM_WEBHOOK, album_id, name)))
    event.listen(Session, "after_rollback", webhooks.forget_ended)
    retrying = retry_options(settings.webhook_backoff_s, MAX_BACKOFF_S, also=(DeliveryFailed,))

    def started(url: str | None, body: bytes, what: str, retries: int) -> str:
        """A `started` delivery: retried like the others, recorded only in the log."""
        if not url:
            return "skipped"
        error, final = _attempt(settings, url, body, webhooks.STARTED)
        if error is None:
            return webhooks.DELIVERED
        if final or retries + 1 >= settings.webhook_max_attempts:
            log.info("started webhook for %s given up: %s", what, error)
            return webhooks.FAILED
        raise DeliveryFailed(error)

    @app.task(name=TASK_ALBUM_WEBHOOK, bind=True, acks_late=True, max_retries=2 * settings.webhook_max_attempts,
              ignore_result=True, **retrying)
    def deliver_album(self, album_id: str, event_name: str = webhooks.COMPLETED) -> str:
        with session_scope(sessions) as session:
            album = session.get(Album, album_id)
            if album is None or not album.callback_url:
                return "skipped"
            body = json.dumps(jobs.album_to_dict(session, album), sort_keys=True).encode()
            if event_name == webhooks.STARTED:
                url = album.callback_url
            elif album.webhook_status != webhooks.PENDING or not jobs.album_done(session, album_id):
                return "skipped"  # not done yet (a later end announces it again), or already sent
            else:
                seen = album.webhook_attempts or 0
                claimed = session.execute(  # this delivery owns the attempt: a concurrent one stops here
                    update(Album).where(Album.id == album_id, Album.webhook_status == webhooks.PENDING,
                                        Album.webhook_attempts == seen).values(webhook_attempts=seen + 1))
                if claimed.rowcount != 1:  # type: ignore[attr-defined]
                    return "skipped"
                url, attempts = album.callback_url, seen + 1
        if event_name == webhooks.STARTED:
            return started(url, body, f"album {album_id}", self.request.retries)
        error, final = _attempt(settings, url, body, webhooks.COMPLETED)
        values = webhooks.attempt_values(settings.webhook_max_attempts if final else attempts, error,
                                         settings.webhook_max_attempts)
        with session_scope(sessions) as session:
            session.execute(update(Album).where(Album.id == album_id).values(**values))
        if values["webhook_status"] == webhooks.PENDING:
            log.info("webhook for album %s: attempt %d failed (%s)", album_id, attempts, error)
            raise DeliveryFailed(error)
        log.info("webhook for album %s %s after %d attempt(s)", album_id, values["webhook_status"], attempts)
        return values["webhook_status"]

    # Room for as many database blips as delivery attempts; past that the webhook stays `pending` on
    # its row and the reaper sends it again.
    @app.task(name=TASK_WEBHOOK, bind=True, acks_late=True, max_retries=2 * settings.webhook_max_attempts,
              ignore_result=True, **retrying)
    def deliver(self, job_id: str, event_name: str = webhooks.COMPLETED) -> str:
        if event_name == webhooks.STARTED:
            with session_scope(sessions) as session:
                job = session.get(Job, job_id)
                url = job.callback_url if job is not None else None
                body = json.dumps(jobs.to_dict(job), sort_keys=True).encode() if job is not None else b""
            return started(url, body, f"job {job_id}", self.request.retries)
        with session_scope(sessions) as session:
            job = session.get(Job, job_id)
            if job is None or not job.callback_url or job.status not in jobs.FINISHED:
                return "skipped"
            if job.webhook_status != webhooks.PENDING:
                return job.webhook_status or "skipped"  # a redelivered message after the last attempt
            url, attempts = job.callback_url, (job.webhook_attempts or 0) + 1
            body = json.dumps(jobs.to_dict(job), sort_keys=True).encode()
        error, final = _attempt(settings, url, body, webhooks.COMPLETED)
        values = webhooks.attempt_values(settings.webhook_max_attempts if final else attempts, error,
                                         settings.webhook_max_attempts)
        with session_scope(sessions) as session:
            session.execute(update(Job).where(Job.id == job_id).values(**values))
        if values["webhook_status"] == webhooks.PENDING:
            log.info("webhook for job %s: attempt %d failed (%s)", job_id, attempts, error)
            raise DeliveryFailed(error)
        log.info("webhook for job %s %s after %d attempt(s)", job_id, values["webhook_status"], attempts)
        return values["webhook_status"]
