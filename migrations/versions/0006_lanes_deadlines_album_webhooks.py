"""Priority lanes, Cancel-After deadlines and album webhooks by event (issue 19, items 9-11)

jobs.lane (interactive / bulk) lets the reaper resend a job into its own lane; jobs.cancel_after_at
is a caller's deadline; jobs.webhook_events and the albums' webhook columns choose what is sent,
one delivery per album.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 15:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


# Plain ADD/DROP COLUMN, no batch copy: on SQLite a batch rebuild of albums would drop the table
# and so null every job's album_id (ON DELETE SET NULL), and one of jobs would delete its labels.
JOB_COLUMNS = [
    sa.Column('webhook_events', sa.String(length=64), nullable=True),
    sa.Column('lane', sa.String(length=16), nullable=True),
    sa.Column('cancel_after_at', sa.DateTime(timezone=True), nullable=True),
]
ALBUM_COLUMNS = [
    sa.Column('callback_url', sa.String(length=2000), nullable=True),
    sa.Column('webhook_events', sa.String(length=64), nullable=True),
    sa.Column('webhook_status', sa.String(length=16), nullable=True),
    sa.Column('webhook_attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('webhook_last_error', sa.Text(), nullable=True),
    sa.Column('started_sent', sa.Boolean(), server_default=sa.false(), nullable=False),
]


def upgrade() -> None:
    for column in JOB_COLUMNS:
        op.add_column('jobs', column)
    for column in ALBUM_COLUMNS:
        op.add_column('albums', column)
    op.create_index(op.f('ix_jobs_cancel_after_at'), 'jobs', ['cancel_after_at'], unique=False)
    op.create_index(op.f('ix_albums_webhook_status'), 'albums', ['webhook_status'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_albums_webhook_status'), table_name='albums')
    op.drop_index(op.f('ix_jobs_cancel_after_at'), table_name='jobs')
    for table, columns in (('albums', ALBUM_COLUMNS), ('jobs', JOB_COLUMNS)):
        for column in reversed(columns):
            op.execute(f"ALTER TABLE {table} DROP COLUMN {column.name}")  # SQLite 3.35+ and PostgreSQL
