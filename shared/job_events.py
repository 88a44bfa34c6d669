"""Job changes, published on Redis pub/sub once committed, so that web's waiters wake without polling.

shared.jobs notes every status change (job id, album id, new status) on the session, as it notes
webhooks to send; whoever commits that session calls `publish` (web after a cancel; the worker's
result writer and reaper through `publish_on_commit`). One message per commit, on
`redis_keys.job_events_channel(queue)`: `{"changes": [{"job": id, "batch": album id or null,
"status": ...}, ...]}`. A message is only a wake-up: a waiter reads the job again from the database,
so a lost message costs a waiter its wait (it answers at its deadline), never a wrong answer.
"""
from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from shared.redis_keys import job_events_channel

log = logging.getLogger(__name__)
CHANGED = "dogbreed.changed_jobs"  # Session.info key: (job id, album id, status) changed in this transaction


def note(session: Session, job_id: str, album_id: str | None, status: str) -> None:
    session.info.setdefault(CHANGED, []).append((job_id, album_id, status))


def changed(session: Session) -> list[tuple[str, str | None, str]]:
    """What changed in the transaction just committed (taken once)."""
    return session.info.pop(CHANGED, [])


def forget(session: Session) -> None:
    """After a rollback nothing changed."""
    session.info.pop(CHANGED, None)


def message(changes: list[tuple[str, str | None, str]]) -> str:
    return json.dumps({"changes": [{"job": job, "batch": album, "status": status} for job, album, status in changes]})


def parse(data: bytes | str) -> list[dict[str, Any]]:
    """The changes of one message; anything else on the channel is ignored."""
    try:
        changes = json.loads(data)["changes"]
        return [c for c in changes if isinstance(c, dict) and isinstance(c.get("job"), str)]
    except (ValueError, KeyError, TypeError):
        return []


def publish(session: Session, client: Any, queue: str) -> None:
    """After a commit: one PUBLISH for everything it changed. Redis away costs waiters their wake-up
    (they answer at their deadline); the commit stands, so nothing is raised."""
    changes = changed(session)
    if not changes or client is None:
        return
    try:
        client.publish(job_events_channel(queue), message(changes))
    except Exception as exc:  # redis.RedisError, or a client closed at shutdown
        log.warning("job changes not published (%d): %s", len(changes), exc)


def publish_on_commit(client: Any, queue: str) -> None:
    """Every session of this process publishes what it changed, after its commit (the worker: result
    writer, claims, reaper), the same hook that announces webhooks."""
    event.listen(Session, "after_commit", lambda session: publish(session, client, queue))
    event.listen(Session, "after_rollback", forget)
