"""Rows for tests, built the way the service builds them: users and keys through shared.accounts, jobs
through shared.jobs.create_job, albums as POST /api/v1/batches stores them.

Each factory takes an open Session, flushes (so ids are set) and returns the row, or the plain key;
the caller's session commits. The table classes are named in this file only, so a rename of a table
is adjusted here once.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from shared import accounts, jobs
from shared.db import make_engine, make_sessionmaker, session_scope
from shared.tables import Album, Job, User

_numbers = itertools.count(1)
_JOB_COLUMNS = frozenset(Job.__mapper__.column_attrs.keys())


@contextmanager
def database(url: str) -> Iterator[Session]:
    """One committed unit of work on `url`; the engine is disposed after, so no test leaves a
    connection that would keep PostgreSQL from dropping its database."""
    engine = make_engine(url)
    try:
        with session_scope(make_sessionmaker(engine)) as session:
            yield session
    finally:
        engine.dispose()


def ago(**delta: float) -> datetime:
    """A UTC time that far back, e.g. `ago(days=40)`, for a row's created_at or finished_at."""
    return jobs.utcnow() - timedelta(**delta)


def make_user(session: Session, name: str | None = None, *, password: str | None = None,
              admin: bool = False) -> User:
    """A user as `dogbreed users add` makes one; a unique name unless one is given."""
    return accounts.create_user(session, name or f"user{next(_numbers)}", password=password, is_admin=admin)


def make_key(session: Session, user: User | None = None) -> str:
    """A plain API key (what the user is shown once) for `user`, or for a new user."""
    return accounts.create_key(session, user if user is not None else make_user(session))


def make_job(session: Session, *, owner_id: int | None = None, sha256: str = "a" * 64, size: int = 1,
             fmt: str = "PNG", width: int = 8, height: int = 8, filename: str | None = None,
             pipeline: str = "classify", album_id: str | None = None, idempotency_key: str | None = None,
             callback_url: str | None = None, **columns: Any) -> Job:
    """A queued job as an upload creates it; then each further column as given, written as is
    (`status="succeeded", created_at=ago(days=40)`), for a row in a state the test needs."""
    unknown = set(columns) - _JOB_COLUMNS
    if unknown:
        raise TypeError(f"jobs has no column {sorted(unknown)}")
    job = jobs.create_job(session, owner_id=owner_id, sha256=sha256, size=size, fmt=fmt, width=width,
                          height=height, filename=filename, pipeline=pipeline, album_id=album_id,
                          idempotency_key=idempotency_key, callback_url=callback_url)
    for name, value in columns.items():
        setattr(job, name, value)
    session.flush()
    return job


def make_album(session: Session, files: Sequence[str | tuple[str, str]] = ("a.jpg", "b.jpg"), *,
               owner_id: int | None = None, **job_columns: Any) -> Album:
    """An album as POST /api/v1/batches stores it: each file name becomes a job in its place, and a
    `(filename, error_code)` pair is a file refused in its place. `job_columns` go to every job."""
    album = Album(owner_id=owner_id, items=[])
    session.add(album)
    session.flush()
    items: list[dict[str, Any]] = []
    for entry in files:
        if isinstance(entry, tuple):
            filename, code = entry
            items.append({"filename": filename, "error": {"code": code, "message": f"{filename} was refused."}})
        else:
            job = make_job(session, owner_id=owner_id, filename=entry, album_id=album.id, **job_columns)
            items.append({"job_id": job.id})
    album.items = items
    session.flush()
    return album


def album_job_ids(album: Album) -> list[str]:
    """The album's job ids in its order (refused files have none)."""
    return [item["job_id"] for item in album.items if "job_id" in item]


def bearer(key: str) -> dict[str, str]:
    """The header that sends an API key."""
    return {"Authorization": f"Bearer {key}"}
