"""Database tables (records). "Model" in this project always means an ML model."""
from __future__ import annotations

import secrets
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, MetaData, String, Text
from sqlalchemy import false as sa_false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


ID_BYTES = 16  # 128 random bits: unguessable
ID_LENGTH = -(-ID_BYTES * 4 // 3)  # characters of base64url without padding (22)


def new_job_id() -> str:
    """Unguessable and URL-safe; job and album ids are ID_LENGTH characters."""
    return secrets.token_urlsafe(ID_BYTES)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Set by `dogbreed users disable`: no login, no key, and every session ends at its next request.
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_job_id)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    pipeline: Mapped[str] = mapped_column(String(16), default="classify", server_default="classify")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    enqueued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    node: Mapped[str | None] = mapped_column(String(200))  # the worker process that ran it last
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    original_filename: Mapped[str | None] = mapped_column(String(255))
    image_sha256: Mapped[str] = mapped_column(String(64))
    image_bytes: Mapped[int] = mapped_column(BigInteger)
    image_format: Mapped[str] = mapped_column(String(16))
    image_width: Mapped[int] = mapped_column(Integer)
    image_height: Mapped[int] = mapped_column(Integer)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    result_kind: Mapped[str | None] = mapped_column(String(16))  # dog / human / neither, for history filters
    album_id: Mapped[str | None] = mapped_column(ForeignKey("albums.id", ondelete="SET NULL"))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    callback_url: Mapped[str | None] = mapped_column(String(2000))
    webhook_status: Mapped[str | None] = mapped_column(String(16))  # pending / delivered / failed
    webhook_attempts: Mapped[int] = mapped_column(Integer, default=0)
    webhook_last_error: Mapped[str | None] = mapped_column(Text)
    webhook_events: Mapped[str | None] = mapped_column(String(64))  # comma-separated; None: completed only
    lane: Mapped[str | None] = mapped_column(String(16))  # interactive / bulk (shared.celeryconf.LANES)
    cancel_after_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # Cancel-After's deadline

    __table_args__ = (
        Index("ix_jobs_owner_created", "owner_id", "created_at"),
        Index("ix_jobs_album", "album_id"),
        Index("ix_jobs_webhook_status", "webhook_status"),  # the reaper looks for pending deliveries
        # One live key per owner: a concurrent retry loses at commit and answers with the winner.
        Index("uq_jobs_owner_idempotency_key", "owner_id", "idempotency_key", unique=True),
        Index("ix_jobs_status_created", "status", "created_at"),
        Index("ix_jobs_created", "created_at"),
        Index("ix_jobs_image_sha256", "image_sha256"),
        Index("ix_jobs_cancel_after_at", "cancel_after_at"),  # the sweep of jobs past their deadline
    )


class Album(Base):
    """Many uploads sent in one request; `items` keeps the files in order, each a job id or its error.
    (The API's v1 names for it are /api/v1/batches and batch_id.)"""

    __tablename__ = "albums"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_job_id)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    # An album's own webhook: one delivery when all its jobs ended (and one when the first started,
    # if asked), never one per image; its jobs carry no callback_url.
    callback_url: Mapped[str | None] = mapped_column(String(2000))
    webhook_events: Mapped[str | None] = mapped_column(String(64))
    webhook_status: Mapped[str | None] = mapped_column(String(16), index=True)  # pending / delivered / failed
    webhook_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    webhook_last_error: Mapped[str | None] = mapped_column(Text)
    started_sent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())


class ModelVersion(Base):
    """A published breed model in DOGBREED_MODEL_DIR; at most one is active."""

    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    backbone: Mapped[str] = mapped_column(String(40))
    weights: Mapped[str] = mapped_column(String(400))
    num_classes: Mapped[int] = mapped_column(Integer)
    card: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    activated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Label(Base):
    """A user's correction of a job's answer: the right breed (canonical spelling, see
    shared.breed_names) or the right kind. One per job; `models learn` trains on the dog labels, and gc
    keeps a labeled job's image for as long as the label lives."""

    __tablename__ = "labels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # dog / human / neither (shared.jobs.KINDS)
    breed: Mapped[str | None] = mapped_column(String(100), index=True)  # set when kind is dog
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
