"""Webhooks: which callback URLs we accept, how a body is signed, and which ended jobs to announce.

Web checks a callback_url at submit; the worker checks it again when it delivers (a name can
resolve elsewhere by then). A job's end is noted on the session by shared.jobs; whoever commits
that session calls `announce_ended` (web after a cancel, the worker after every commit).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time
from typing import Any, Callable

from sqlalchemy.orm import Session

from shared import jobs, outbound
from shared.errors import FixedCodeError
from shared.jobs import ALBUMS_STARTED, ALBUMS_WITH_ENDS, ENDED_WITH_CALLBACK, STARTED_WITH_CALLBACK

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Dogbreed-Signature"  # the body's HMAC alone: kept one release beside Standard Webhooks
# Standard Webhooks (standardwebhooks.com): the signature covers the delivery's id and time as well.
ID_HEADER, TIMESTAMP_HEADER, STANDARD_SIGNATURE_HEADER = "webhook-id", "webhook-timestamp", "webhook-signature"
SECRET_PREFIX = "whsec_"
MAX_URL_LENGTH = outbound.MAX_URL_LENGTH
ALLOW_PRIVATE_SETTING = "DOGBREED_WEBHOOK_ALLOW_PRIVATE"
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
STATES = (PENDING, DELIVERED, FAILED)
# What a callback_url is sent (webhook_events): `completed` (always) when the job or album ended, and
# `started` too, if asked, when its work began. The header says which; the body is the job or the album.
COMPLETED, STARTED = "completed", "started"
EVENTS = (COMPLETED, STARTED)
EVENT_HEADER = "X-Dogbreed-Event"


def events_value(names: list[str]) -> str | None:
    """Events as stored on a row: None for the default (completed alone), else comma-joined in EVENTS'
    order; `completed` is always among them (the end is what the webhook is for)."""
    chosen = [event for event in EVENTS if event in names or event == COMPLETED]
    return None if chosen == [COMPLETED] else ",".join(chosen)


def events_of(value: str | None) -> tuple[str, ...]:
    return (COMPLETED,) if not value else tuple(event for event in EVENTS if event in value.split(","))


class CallbackUrlError(FixedCodeError, ValueError):
    """The callback_url cannot be used; the message says why and what to send instead."""

    code = "bad_callback_url"


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signing_key(secret: str) -> bytes:
    """A `whsec_<base64>` secret signs with its decoded bytes, as Standard Webhooks says; an older
    deployment's plain secret with its own bytes (`standardwebhooks.Webhook(secret.encode())` verifies)."""
    if secret.startswith(SECRET_PREFIX):
        return base64.b64decode(secret[len(SECRET_PREFIX):] + "==")
    return secret.encode()


def delivery_id(kind: str, thing_id: str, event: str) -> str:
    """The same for every attempt of one delivery, so a receiver drops a repeat it already handled."""
    return f"msg_{kind}_{thing_id}_{event}"


def standard_headers(msg_id: str, body: bytes, secret: str, now: float | None = None) -> dict[str, str]:
    """webhook-id, webhook-timestamp and webhook-signature (v1, HMAC-SHA256 of "id.timestamp.body"): a
    recorded delivery stops verifying once its timestamp is old (receivers allow 5 minutes)."""
    timestamp = str(int(time.time() if now is None else now))
    mac = hmac.new(signing_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return {ID_HEADER: msg_id, TIMESTAMP_HEADER: timestamp,
            STANDARD_SIGNATURE_HEADER: "v1," + base64.b64encode(mac).decode()}


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


ALBUMS_DUE = "dogbreed.albums_due"  # Session.info: (album id, event) to announce after the commit


def note_albums_due(session: Session) -> None:
    """Before a commit that ended or started album jobs: which albums' webhooks to announce after it
    (the delivery checks the album is done, in its own transaction: concurrent ends of an album's
    last chunks each announce it, and the one that sees it done sends it, once)."""
    ended, started = session.info.pop(ALBUMS_WITH_ENDS, set()), session.info.pop(ALBUMS_STARTED, set())
    due = [(album_id, STARTED) for album_id in jobs.albums_started(session, started)]
    due += [(album_id, COMPLETED) for album_id in jobs.albums_awaiting_webhook(session, ended)]
    if due:
        session.info.setdefault(ALBUMS_DUE, []).extend(due)


def announce_ended(session: Session, enqueue: Callable[[str, str], None],
                   enqueue_album: Callable[[str, str], None] | None = None) -> None:
    """After a commit: enqueue (job id, event) for each job that ended in it with a callback_url, or
    started with `started` asked, and (album id, event) for each album note_albums_due found. One
    that cannot be sent stays `pending` on its row (the end is committed); the reaper sends it later."""
    due = [(job_id, COMPLETED) for job_id in ended_with_callback(session)]
    due += [(job_id, STARTED) for job_id in session.info.pop(STARTED_WITH_CALLBACK, [])]
    albums = session.info.pop(ALBUMS_DUE, [])
    for send, items in ((enqueue, due), (enqueue_album, albums if enqueue_album else [])):
        for thing_id, event in items:
            try:
                send(thing_id, event)  # type: ignore[misc]
            except Exception as exc:  # the broker is away: nothing to undo
                log.warning("%s webhook for %s not enqueued: %s", event, thing_id, exc)


def forget_ended(session: Session) -> None:
    """After a rollback nothing ended or started."""
    for key in (ENDED_WITH_CALLBACK, STARTED_WITH_CALLBACK, ALBUMS_WITH_ENDS, ALBUMS_STARTED, ALBUMS_DUE):
        session.info.pop(key, None)


def attempt_values(attempts: int, error: str | None, max_attempts: int) -> dict[str, Any]:
    """The webhook columns after one more attempt."""
    status = DELIVERED if error is None else (FAILED if attempts >= max_attempts else PENDING)
    return {"webhook_attempts": attempts, "webhook_status": status, "webhook_last_error": error}
