"""Old jobs and their images expire, so the database and the image folder do not grow without end."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from shared.images import ALLOWED_FORMATS
from shared.jobs import FINISHED
from shared.storage import ImageStore
from shared.tables import Job, utcnow


@dataclass
class Expired:
    jobs: int
    images: int


def expire(session: Session, store: ImageStore, older_than_days: int, dry_run: bool = False) -> Expired:
    """Delete finished jobs created before the cutoff, then the images no remaining job uses."""
    cutoff = utcnow() - timedelta(days=older_than_days)
    expiring = Job.status.in_(FINISHED) & (Job.created_at < cutoff)
    old = list(session.execute(select(Job.id, Job.image_sha256, Job.image_format).where(expiring)))
    if not old:
        return Expired(0, 0)
    images = {(row.image_sha256, ALLOWED_FORMATS.get(row.image_format, "bin")) for row in old}
    kept = set(session.scalars(
        select(Job.image_sha256).where(Job.image_sha256.in_([sha for sha, _ in images]), ~expiring)
    ))
    orphans = [(sha, ext) for sha, ext in images if sha not in kept and store.path_for(sha, ext).exists()]
    if not dry_run:
        session.execute(delete(Job).where(expiring))
        session.commit()  # rows first: a failed commit must not leave jobs whose images are gone
        for sha, ext in orphans:
            store.delete(sha, ext)
    return Expired(len(old), len(orphans))
