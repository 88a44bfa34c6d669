"""Old jobs and their images expire, so the database and the image folder do not grow without end."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from shared.images import ALLOWED_FORMATS
from shared.jobs import FINISHED
from shared.storage import Images
from shared.tables import Job, utcnow


GRACE_S = 3600.0  # an image stored again within this long is kept, whatever the database said


@dataclass
class Expired:
    jobs: int
    images: int


def expire(session: Session, store: Images, older_than_days: int, dry_run: bool = False,
           grace_s: float = GRACE_S) -> Expired:
    """Delete finished jobs created before the cutoff, then the images no remaining job uses and
    nobody stored in the last `grace_s` (an upload of the same bytes re-stores them: see `_spare`)."""
    cutoff = utcnow() - timedelta(days=older_than_days)
    expiring = Job.status.in_(FINISHED) & (Job.created_at < cutoff)
    old = list(session.execute(select(Job.id, Job.image_sha256, Job.image_format).where(expiring)))
    if not old:
        return Expired(0, 0)
    images = {(row.image_sha256, ALLOWED_FORMATS.get(row.image_format, "bin")) for row in old}
    kept = set(session.scalars(
        select(Job.image_sha256).where(Job.image_sha256.in_([sha for sha, _ in images]), ~expiring)
    ))
    orphans = [(sha, ext) for sha, ext in images if sha not in kept and store.exists(sha, ext)]
    if not dry_run:
        session.execute(delete(Job).where(expiring))
        session.commit()  # rows first: a failed commit must not leave jobs whose images are gone
        for sha, ext in orphans:
            if not _spare(session, store, sha, ext, grace_s):
                store.delete(sha, ext)
    return Expired(len(old), len(orphans))


def _spare(session: Session, store: Images, sha256: str, extension: str, grace_s: float) -> bool:
    """True for an image an upload may be using right now. An upload stores (local: rewrites, S3: PUTs,
    which refreshes LastModified) BEFORE it commits its job row, so: recently stored, or now used by a
    committed job, means keep it."""
    stored = store.stored_at(sha256, extension)
    if stored is None or (utcnow() - stored).total_seconds() < grace_s:
        return True
    session.rollback()  # see rows committed since we looked
    return session.scalar(select(Job.id).where(Job.image_sha256 == sha256).limit(1)) is not None
