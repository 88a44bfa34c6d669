"""One place decides who may see a job: its owner, or an admin (or anyone when auth is off)."""
from __future__ import annotations

from typing import TypeVar

from shared.tables import Album, Job
from web.auth import owner_scope
from web.database import db
from web.errors import ApiError

Owned = TypeVar("Owned", Job, Album)


def _owned_or_404(table: type[Owned], item_id: str, code: str, noun: str) -> Owned:
    item = db().get(table, item_id) if len(item_id) <= 32 else None
    scope = owner_scope()
    if item is None or (scope is not None and item.owner_id != scope):
        # The same answer for "not yours" and "not there": ids of others are not confirmed.
        raise ApiError(code, f"No {noun} {item_id!r} here. Check the id, or log in as its owner.", 404)
    return item


def get_job_or_404(job_id: str) -> Job:
    return _owned_or_404(Job, job_id, "job_not_found", "job")


def get_album_or_404(album_id: str) -> Album:
    return _owned_or_404(Album, album_id, "batch_not_found", "album")  # the code keeps the API's v1 name
