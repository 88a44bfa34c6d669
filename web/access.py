"""One place decides who may see a job: its owner, or an admin (or anyone when auth is off)."""
from __future__ import annotations

from shared.tables import Batch, Job
from web.auth import owner_scope
from web.database import db
from web.errors import ApiError


def get_job_or_404(job_id: str) -> Job:
    job = db().get(Job, job_id) if len(job_id) <= 32 else None
    scope = owner_scope()
    if job is None or (scope is not None and job.owner_id != scope):
        # The same answer for "not yours" and "not there": ids of others are not confirmed.
        raise ApiError(404, "job_not_found", f"No job {job_id!r} here. Check the id, or log in as its owner.")
    return job


def get_batch_or_404(batch_id: str) -> Batch:
    batch = db().get(Batch, batch_id) if len(batch_id) <= 32 else None
    scope = owner_scope()
    if batch is None or (scope is not None and batch.owner_id != scope):
        raise ApiError(404, "batch_not_found", f"No album {batch_id!r} here. Check the id, or log in as its owner.")
    return batch
