"""Webhooks: which callback URLs we accept, how a body is signed, and which ended jobs to announce.

Web checks a callback_url at submit; the worker checks it again when it delivers (a name can
resolve elsewhere by then). A job's end is noted on the session by shared.jobs; whoever commits
that session calls `announce_ended` (web after a cancel, the worker after every commit).
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import socket
from typing import Any, Callable
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from shared.errors import FixedCodeError
from shared.jobs import ENDED_WITH_CALLBACK

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Dogbreed-Signature"
MAX_URL_LENGTH = 2000
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
STATES = (PENDING, DELIVERED, FAILED)
# What a callback_url is sent (webhook_events): `completed` (the default) when the job or album ended,
# `started` too when its work began. The header says which; the body is the job or the album.
COMPLETED, STARTED = "completed", "started"
EVENTS = (COMPLETED, STARTED)
EVENT_HEADER = "X-Dogbreed-Event"


def events_value(names: list[str]) -> str | None:
    """Events as stored on a row: None for the default (completed alone), else comma-joined in EVENTS' order."""
    chosen = [event for event in EVENTS if event in names]
    return None if chosen == [COMPLETED] else ",".join(chosen)


def events_of(value: str | None) -> tuple[str, ...]:
    return (COMPLETED,) if not value else tuple(event for event in EVENTS if event in value.split(","))


class CallbackUrlError(FixedCodeError, ValueError):
    """The callback_url cannot be used; the message says why and what to send instead."""

    code = "bad_callback_url"


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _refused(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return (ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_reserved or ip.is_multicast
            or ip.is_unspecified or not ip.is_global)


def check_callback_url(url: str, allow_private: bool) -> str:
    """The URL when it is http(s) and resolves only to public addresses (or private ones are allowed)."""
    if len(url) > MAX_URL_LENGTH:
        raise CallbackUrlError(f"callback_url is longer than {MAX_URL_LENGTH} characters.")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CallbackUrlError("callback_url must be an absolute http:// or https:// URL, e.g. https://example.com/hook.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except (OSError, ValueError) as exc:
        raise CallbackUrlError(f"callback_url's host {parts.hostname!r} does not resolve ({exc}).") from None
    if not allow_private:
        for info in infos:
            address = str(info[4][0])
            if _refused(address):
                raise CallbackUrlError(
                    f"callback_url's host {parts.hostname!r} resolves to {address}, a loopback, private or "
                    "link-local address; use a public URL (an operator may set DOGBREED_WEBHOOK_ALLOW_PRIVATE=1).")
    return url


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
