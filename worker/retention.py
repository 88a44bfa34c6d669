"""Old jobs and their images expire, so the database and the image folder do not grow without end."""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, delete, exists, func, select
from sqlalchemy.orm import Session, aliased

from shared.formats import ALLOWED_FORMATS
from shared.jobs import FINISHED, is_labeled
from shared.stored import ImageStore
from shared.tables import Job, Label, utcnow

BATCH = 1000
# An image untouched for this long is not part of an upload in progress (see shared/storage.py).
GRACE_S = 3600


@dataclass
class Expired:
    jobs: int
    images: int


def expire(session: Session, store: ImageStore, older_than_days: int, dry_run: bool = False,
           grace_s: float = GRACE_S) -> Expired:
    """Delete finished jobs created before the cutoff, in batches, then the images no remaining
    job uses and nobody stored again within the grace period. A labeled job stays, and so its image:
    a user's correction is training data for as long as the label lives.

    No list of ids or hashes is ever bound as parameters: PostgreSQL allows 65535 per statement,
    and a large backlog must not make every round fail."""
    cutoff = utcnow() - timedelta(days=older_than_days)
    expiring = Job.status.in_(FINISHED) & (Job.created_at < cutoff) & ~is_labeled()  # a label keeps its job
    count = session.scalar(select(func.count()).select_from(Job).where(expiring)) or 0
    if not count:
        return Expired(0, 0)
    other = aliased(Job)
    still_used = exists().where(and_(other.image_sha256 == Job.image_sha256,
                                     ~(other.status.in_(FINISHED) & (other.created_at < cutoff)
                                       & ~exists().where(Label.job_id == other.id))))
    images = set(session.execute(
        select(Job.image_sha256, Job.image_format).where(expiring, ~still_used).distinct()))
    orphans = [(sha, ALLOWED_FORMATS.get(fmt, "bin")) for sha, fmt in images]
    if dry_run:
        return Expired(count, sum(store.exists(sha, ext) for sha, ext in orphans))
    deleted = 0
    while True:
        batch = select(Job.id).where(expiring).limit(BATCH).scalar_subquery()
        # ignored: a DELETE's Result is a CursorResult, which has rowcount (SQLAlchemy types it as Result)
        gone = session.execute(delete(Job).where(Job.id.in_(batch)).execution_options(synchronize_session=False)).rowcount  # type: ignore[attr-defined]
        session.commit()  # rows first: a failed commit must not leave jobs whose images are gone
        deleted += gone
        if gone < BATCH:
            break
    untouched_since = time.time_ns() - int(grace_s * 1_000_000_000)
    removed = sum(store.discard(sha, ext, untouched_since) for sha, ext in orphans)
    return Expired(deleted, removed)
