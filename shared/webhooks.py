"""Webhooks: which callback URLs we accept, how a body is signed, and which ended jobs to announce.

Web checks a callback_url at submit; the worker checks it again when it delivers (a name can
resolve elsewhere by then). A job's end is noted on the session by shared.jobs; whoever commits
that session calls `announce_ended` (web after a cancel, the worker after every commit).
"""
from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any, Callable

from sqlalchemy.orm import Session

from shared import outbound
from shared.errors import FixedCodeError
from shared.jobs import ENDED_WITH_CALLBACK

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Dogbreed-Signature"
MAX_URL_LENGTH = outbound.MAX_URL_LENGTH
ALLOW_PRIVATE_SETTING = "DOGBREED_WEBHOOK_ALLOW_PRIVATE"
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
STATES = (PENDING, DELIVERED, FAILED)


class CallbackUrlError(FixedCodeError, ValueError):
    """The callback_url cannot be used; the message says why and what to send instead."""

    code = "bad_callback_url"


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def check_callback_url(url: str, allow_private: bool) -> str:
    """The URL when it is http(s) and resolves only to public addresses (or private ones are allowed).
    The worker re-checks with `callback_target` at each delivery and connects to what that checked."""
    callback_target(url, allow_private)
    return url


def callback_target(url: str, allow_private: bool) -> outbound.Target:
    """The callback URL parsed and resolved by shared/outbound.py, the parser its sender uses."""
    try:
        return outbound.check(url, allow_private, "callback_url", ALLOW_PRIVATE_SETTING)
    except outbound.UrlRefused as exc:
        raise CallbackUrlError(str(exc)) from None


def ended_with_callback(session: Session) -> list[str]:
    """Ids of jobs with a callback_url that ended in the transaction just committed (taken once)."""
    return session.info.pop(ENDED_WITH_CALLBACK, [])


def announce_ended(session: Session, enqueue: Callable[[str], None]) -> None:
    """After a commit: enqueue the delivery of each job that ended in it with a callback_url. One that
    cannot be sent stays `pending` on its row (the job's end is committed); the reaper sends it later."""
    for job_id in ended_with_callback(session):
        try:
            enqueue(job_id)
        except Exception as exc:  # the broker is away: nothing to undo
            log.warning("webhook for job %s not enqueued: %s", job_id, exc)


def forget_ended(session: Session) -> None:
    """After a rollback nothing ended."""
    session.info.pop(ENDED_WITH_CALLBACK, None)


def attempt_values(attempts: int, error: str | None, max_attempts: int) -> dict[str, Any]:
    """The webhook columns after one more attempt."""
    status = DELIVERED if error is None else (FAILED if attempts >= max_attempts else PENDING)
    return {"webhook_attempts": attempts, "webhook_status": status, "webhook_last_error": error}
