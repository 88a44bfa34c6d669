"""jobs.pipeline (the reaper resends the task the job was submitted for); users.disabled_at

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 04:30:00
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs') as batch:
        batch.add_column(sa.Column('pipeline', sa.String(length=16), nullable=False, server_default='classify'))
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.drop_column('disabled_at')
    with op.batch_alter_table('jobs') as batch:
        batch.drop_column('pipeline')
