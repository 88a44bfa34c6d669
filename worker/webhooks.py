"""Webhook delivery as its own Celery task (`dogbreed.webhook`), never on the inference threads.

When a session that ended jobs with a callback_url commits (the result writer, the reaper), their
ids are enqueued here. Each attempt POSTs the job's JSON, signed with DOGBREED_WEBHOOK_SECRET, and
is recorded on the row; failures and non-2xx answers (and database blips) retry through Celery's
own backoff, with jitter (worker/retry.py).
"""
from __future__ import annotations

import json
import logging

from celery import Celery
from sqlalchemy import event, update
from sqlalchemy.orm import Session, sessionmaker

from shared import jobs, outbound, webhooks
from shared.celeryconf import PUBLISH_RETRY_POLICY, TASK_WEBHOOK
from shared.db import session_scope
from shared.settings import Settings
from shared.tables import Job
from worker.retry import retry_options

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 600


class DeliveryFailed(Exception):
    """This attempt did not reach a 2xx answer; the row says so, and Celery tries again later."""


ANSWER_BYTES = 4096  # of a receiver's answer we read (the status is what counts), the rest is never read


def post(target: outbound.Target, body: bytes, secret: str, timeout_s: int) -> str | None:
    """One attempt, all of it within `timeout_s`, to the addresses the check resolved; no redirect is
    followed (a 3xx is not a delivery). None when the receiver answered 2xx, else what went wrong."""
    headers = {"Content-Type": "application/json", "User-Agent": "dogbreed-webhook/1",
               webhooks.SIGNATURE_HEADER: webhooks.sign(body, secret)}
    try:
        answer = outbound.send(target, "POST", body, headers, timeout_s=timeout_s, max_bytes=ANSWER_BYTES)
    except outbound.FetchFailed as exc:
        return f"{exc.kind}: {exc}"[:500]
    if 200 <= answer.status < 300:
        return None
    return f"HTTP {answer.status}: {answer.body[:200].decode('utf-8', 'replace')}"


def register(app: Celery, settings: Settings, sessions: sessionmaker) -> None:
    def enqueue(job_id: str) -> None:
        app.send_task(TASK_WEBHOOK, args=[job_id], queue=settings.queue, retry=True, retry_policy=PUBLISH_RETRY_POLICY)

    # Every session of this worker process: the result writer's and the reaper's alike.
    event.listen(Session, "after_commit", lambda session: webhooks.announce_ended(session, enqueue))
    event.listen(Session, "after_rollback", webhooks.forget_ended)

    # Room for as many database blips as delivery attempts; past that the webhook stays `pending` on
    # its row and the reaper sends it again.
    @app.task(name=TASK_WEBHOOK, acks_late=True, max_retries=2 * settings.webhook_max_attempts,
              ignore_result=True, **retry_options(settings.webhook_backoff_s, MAX_BACKOFF_S, also=(DeliveryFailed,)))
    def deliver(job_id: str) -> str:
        with session_scope(sessions) as session:
            job = session.get(Job, job_id)
            if job is None or not job.callback_url or job.status not in jobs.FINISHED:
                return "skipped"
            if job.webhook_status != webhooks.PENDING:
                return job.webhook_status or "skipped"  # a redelivered message after the last attempt
            url, attempts = job.callback_url, (job.webhook_attempts or 0) + 1
            body = json.dumps(jobs.to_dict(job), sort_keys=True).encode()
        if not settings.webhook_secret:
            error: str | None = "DOGBREED_WEBHOOK_SECRET is not set on the worker; nothing was sent unsigned."
            attempts = settings.webhook_max_attempts
        else:
            try:
                target = webhooks.callback_target(url, settings.webhook_allow_private)
                error = post(target, body, settings.webhook_secret, settings.webhook_timeout_s)
            except webhooks.CallbackUrlError as exc:
                error, attempts = str(exc), settings.webhook_max_attempts
        values = webhooks.attempt_values(attempts, error, settings.webhook_max_attempts)
        with session_scope(sessions) as session:
            session.execute(update(Job).where(Job.id == job_id).values(**values))
        if values["webhook_status"] == webhooks.PENDING:
            log.info("webhook for job %s: attempt %d failed (%s)", job_id, attempts, error)
            raise DeliveryFailed(error)
        log.info("webhook for job %s %s after %d attempt(s)", job_id, values["webhook_status"], attempts)
        return values["webhook_status"]
