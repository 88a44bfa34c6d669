"""Webhook delivery as its own Celery task (`dogbreed.webhook`), never on the inference threads.

Deliveries travel on their own broker list (celeryconf.webhook_queue), and a worker's task thread
only hands each one to this process's delivery pool (DOGBREED_WEBHOOK_THREADS threads) and acks it:
a receiver that hangs holds a pool thread for at most the attempt's deadline, never a thread a
classify job needs. A retry is a new message with Celery's backoff; an attempt lost with its process
leaves the row `pending`, which the reaper sends again. Each attempt first sets a Redis key with the
attempt's deadline as TTL (redis_keys.webhook_inflight_key): a second copy of the same delivery
(the reaper's, a redelivered message) finds it and sends nothing.

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
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import redis
from celery import Celery
from celery.utils.time import get_exponential_backoff_interval
from sqlalchemy import event, update
from sqlalchemy.orm import Session, sessionmaker

from shared import jobs, outbound, webhooks
from shared.celeryconf import PUBLISH_RETRY_POLICY, TASK_ALBUM_WEBHOOK, TASK_WEBHOOK, webhook_queue
from shared.db import session_scope
from shared.redis_keys import webhook_inflight_key
from shared.settings import Settings
from shared.tables import Album, Job
from worker.retry import PASSING_FAULTS

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 600


class DeliveryFailed(Exception):
    """This attempt did not reach a 2xx answer; the row says so, and Celery tries again later."""


RETRIED: tuple[type[Exception], ...] = (DeliveryFailed, *PASSING_FAULTS)  # what a later attempt may cure
INFLIGHT_MARGIN_S = 10  # the database read before the POST and the write after it, beyond the attempt's own deadline
ANSWER_BYTES = 4096  # of a receiver's answer we read (the status is what counts), the rest is never read


def post(target: outbound.Target, body: bytes, secret: str, timeout_s: int, event: str = webhooks.COMPLETED,
         msg_id: str | None = None) -> str | None:
    """One attempt, all of it within `timeout_s`, to the addresses the check resolved; no redirect is
    followed (a 3xx is not a delivery). None when the receiver answered 2xx, else what went wrong."""
    headers = {"Content-Type": "application/json", "User-Agent": "dogbreed-webhook/1",
               webhooks.SIGNATURE_HEADER: webhooks.sign(body, secret), webhooks.EVENT_HEADER: event,
               **webhooks.standard_headers(msg_id or webhooks.delivery_id("test", uuid.uuid4().hex, event), body, secret)}
    try:
        answer = outbound.send(target, "POST", body, headers, timeout_s=timeout_s, max_bytes=ANSWER_BYTES)
    except outbound.FetchFailed as exc:
        return f"{exc.kind}: {exc}"[:500]
    if 200 <= answer.status < 300:
        return None
    return f"HTTP {answer.status}: {answer.body[:200].decode('utf-8', 'replace')}"


def _attempt(settings: Settings, url: str, body: bytes, event: str, msg_id: str) -> tuple[str | None, bool]:
    """One POST: what went wrong (None: delivered), and whether that is final (no retry can help)."""
    if not settings.webhook_secret:
        return "DOGBREED_WEBHOOK_SECRET is not set on the worker; nothing was sent unsigned.", True
    try:
        target = webhooks.callback_target(url, settings.webhook_allow_private)
    except webhooks.CallbackUrlError as exc:
        return str(exc), True
    return post(target, body, settings.webhook_secret, settings.webhook_timeout_s, event, msg_id), False


class Pool:
    """This process's delivery threads. At most `waiting` deliveries wait for one; past that a message
    goes back to the broker for a second later, so a flood of hanging receivers costs no memory here."""

    def __init__(self, threads: int) -> None:
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix="webhook")
        self.room = threading.BoundedSemaphore(threads * 4)

    def submit(self, work: Callable[[], None]) -> bool:
        if not self.room.acquire(blocking=False):
            return False

        def run() -> None:
            try:
                work()
            finally:
                self.room.release()
        self.executor.submit(run)
        return True


def register(app: Celery, settings: Settings, sessions: sessionmaker) -> None:
    queue = webhook_queue(settings)

    def send(task: str, thing_id: str, event: str) -> None:
        args = [thing_id] if event == webhooks.COMPLETED and task == TASK_WEBHOOK else [thing_id, event]
        app.send_task(task, args=args, queue=queue, retry=True, retry_policy=PUBLISH_RETRY_POLICY)

    # Every session of this worker process: the result writer's and the reaper's alike.
    event.listen(Session, "before_commit", webhooks.note_albums_due)
    event.listen(Session, "after_commit", lambda session: webhooks.announce_ended(
        session, lambda job_id, name: send(TASK_WEBHOOK, job_id, name),
        lambda album_id, name: send(TASK_ALBUM_WEBHOOK, album_id, name)))
    event.listen(Session, "after_rollback", webhooks.forget_ended)
    pool = Pool(settings.webhook_threads)
    marks = redis.Redis.from_url(settings.require_broker(), socket_connect_timeout=2, socket_timeout=5)
    # Room for as many database blips as delivery attempts; past that the webhook stays `pending` on
    # its row and the reaper sends it again.
    max_retries = 2 * settings.webhook_max_attempts

    def started(url: str | None, body: bytes, what: str, retries: int, msg_id: str) -> str:
        """A `started` delivery: retried like the others, recorded only in the log."""
        if not url:
            return "skipped"
        error, final = _attempt(settings, url, body, webhooks.STARTED, msg_id)
        if error is None:
            return webhooks.DELIVERED
        if final or retries + 1 >= settings.webhook_max_attempts:
            log.info("started webhook for %s given up: %s", what, error)
            return webhooks.FAILED
        raise DeliveryFailed(error)

    def deliver_album(album_id: str, event_name: str, retries: int) -> str:
        with session_scope(sessions) as session:
            album = session.get(Album, album_id)
            if album is None or not album.callback_url:
                return "skipped"
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
            # Read after the album was seen done (an end is final): a body read before that check could
            # miss the last chunk's commit, which SQLite's reads need not wait for.
            body = json.dumps(jobs.album_to_dict(session, album), sort_keys=True).encode()
        if event_name == webhooks.STARTED:
            return started(url, body, f"album {album_id}", retries, webhooks.delivery_id("album", album_id, event_name))
        return completed(Album, "album", album_id, event_name, url, body, attempts)

    def deliver_job(job_id: str, event_name: str, retries: int) -> str:
        if event_name == webhooks.STARTED:
            with session_scope(sessions) as session:
                job = session.get(Job, job_id)
                url = job.callback_url if job is not None else None
                body = json.dumps(jobs.to_dict(job), sort_keys=True).encode() if job is not None else b""
            return started(url, body, f"job {job_id}", retries, webhooks.delivery_id("job", job_id, event_name))
        with session_scope(sessions) as session:
            job = session.get(Job, job_id)
            if job is None or not job.callback_url or job.status not in jobs.FINISHED:
                return "skipped"
            if job.webhook_status != webhooks.PENDING:
                return job.webhook_status or "skipped"  # a redelivered message after the last attempt
            url, attempts = job.callback_url, (job.webhook_attempts or 0) + 1
            body = json.dumps(jobs.to_dict(job), sort_keys=True).encode()
        return completed(Job, "job", job_id, event_name, url, body, attempts)

    def completed(table: type[Album] | type[Job], kind: str, thing_id: str, event_name: str, url: str, body: bytes,
                  attempts: int) -> str:
        """One attempt of a job's or an album's `completed` delivery, recorded on its row; a retry when
        it may still get through."""
        error, final = _attempt(settings, url, body, webhooks.COMPLETED, webhooks.delivery_id(kind, thing_id, event_name))
        values = webhooks.attempt_values(settings.webhook_max_attempts if final else attempts, error,
                                         settings.webhook_max_attempts)
        with session_scope(sessions) as session:
            session.execute(update(table).where(table.id == thing_id).values(**values))
        if values["webhook_status"] == webhooks.PENDING:
            log.info("webhook for %s %s: attempt %d failed (%s)", kind, thing_id, attempts, error)
            raise DeliveryFailed(error)
        log.info("webhook for %s %s %s after %d attempt(s)", kind, thing_id, values["webhook_status"], attempts)
        return values["webhook_status"]

    def mark(key: str) -> bool:
        """Whether this copy may post: the in-flight key was free (Redis away: yes, at least once)."""
        try:
            return bool(marks.set(key, "1", nx=True, ex=settings.webhook_timeout_s + INFLIGHT_MARGIN_S))
        except redis.RedisError as exc:
            log.warning("webhook in-flight mark not set (%s); delivering anyway", exc)
            return True

    def unmark(key: str) -> None:
        try:
            marks.delete(key)
        except redis.RedisError:
            pass  # its TTL ends it

    def again(task: str, thing_id: str, event_name: str, countdown: float, retries: int) -> None:
        """The same delivery as a new message on the webhook list, `countdown` seconds from now."""
        args = [thing_id] if task == TASK_WEBHOOK and event_name == webhooks.COMPLETED else [thing_id, event_name]
        try:
            app.send_task(task, args=args, queue=queue, countdown=max(1, countdown), retries=retries,
                          retry=True, retry_policy=PUBLISH_RETRY_POLICY)
        except Exception as exc:  # the broker is away: the row stays `pending` (the reaper looks at never-tried ones)
            log.warning("webhook for %s could not be queued again: %s", thing_id, exc)

    def in_pool(task: str, kind: str, thing_id: str, event_name: str, retries: int) -> Callable[[], None]:
        deliver = deliver_job if kind == "job" else deliver_album

        def work() -> None:
            key = webhook_inflight_key(settings.queue, kind, thing_id, event_name)
            if not mark(key):
                log.info("webhook for %s %s (%s) is in flight already: this copy sends nothing", kind, thing_id, event_name)
                return
            try:
                deliver(thing_id, event_name, retries)
            except RETRIED as exc:
                if retries >= max_retries:
                    log.warning("webhook for %s %s: no retry left (%s); the reaper has it", kind, thing_id, exc)
                    return
                again(task, thing_id, event_name, retries=retries + 1, countdown=get_exponential_backoff_interval(
                    max(1, settings.webhook_backoff_s), retries, MAX_BACKOFF_S, True))
            except Exception:
                log.exception("webhook for %s %s failed unexpectedly", kind, thing_id)
            finally:
                unmark(key)
        return work

    def hand_over(task, kind: str, thing_id: str, event_name: str) -> str:
        """On a task thread: give the delivery to the pool and ack; a full pool sends it back for later."""
        if pool.submit(in_pool(task.name, kind, thing_id, event_name, task.request.retries)):
            return "handed over"
        again(task.name, thing_id, event_name, countdown=1, retries=task.request.retries)
        return "pool full"

    @app.task(name=TASK_ALBUM_WEBHOOK, bind=True, ignore_result=True)
    def deliver_album_task(self, album_id: str, event_name: str = webhooks.COMPLETED) -> str:
        return hand_over(self, "album", album_id, event_name)

    @app.task(name=TASK_WEBHOOK, bind=True, ignore_result=True)
    def deliver_job_task(self, job_id: str, event_name: str = webhooks.COMPLETED) -> str:
        return hand_over(self, "job", job_id, event_name)
