"""idempotency, cancel, albums, webhooks, result kind

Adds the batches table and the jobs' columns for them, and fills result_kind (the history's `kind`
filter) for jobs that succeeded before it existed.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 04:01:23.826116
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None
KINDS = ("dog", "human", "neither")


def upgrade() -> None:
    op.create_table('batches',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('items', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_batches_owner_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_batches'))
    )
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_batches_owner_id'), ['owner_id'], unique=False)

    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('result_kind', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('batch_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('idempotency_key', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('callback_url', sa.String(length=2000), nullable=True))
        batch_op.add_column(sa.Column('webhook_status', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('webhook_attempts', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('webhook_last_error', sa.Text(), nullable=True))
        batch_op.create_index('ix_jobs_batch', ['batch_id'], unique=False)
        batch_op.create_index('ix_jobs_webhook_status', ['webhook_status'], unique=False)
        batch_op.create_index('uq_jobs_owner_idempotency_key', ['owner_id', 'idempotency_key'], unique=True)
        batch_op.create_foreign_key(batch_op.f('fk_jobs_batch_id_batches'), 'batches', ['batch_id'], ['id'], ondelete='SET NULL')
    _fill_result_kind()


def _fill_result_kind() -> None:
    """Read each succeeded job's result in Python: JSON functions differ between SQLite and PostgreSQL."""
    jobs = sa.table("jobs", sa.column("id", sa.String), sa.column("status", sa.String),
                    sa.column("result", sa.JSON), sa.column("result_kind", sa.String))
    bind = op.get_bind()
    rows = bind.execute(sa.select(jobs.c.id, jobs.c.result).where(jobs.c.status == "succeeded")).all()
    for kind in KINDS:
        ids = [row.id for row in rows if isinstance(row.result, dict) and row.result.get("kind") == kind]
        for start in range(0, len(ids), 500):
            bind.execute(sa.update(jobs).where(jobs.c.id.in_(ids[start:start + 500])).values(result_kind=kind))


def downgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_jobs_batch_id_batches'), type_='foreignkey')
        batch_op.drop_index('uq_jobs_owner_idempotency_key')
        batch_op.drop_index('ix_jobs_webhook_status')
        batch_op.drop_index('ix_jobs_batch')
        batch_op.drop_column('webhook_last_error')
        batch_op.drop_column('webhook_attempts')
        batch_op.drop_column('webhook_status')
        batch_op.drop_column('callback_url')
        batch_op.drop_column('idempotency_key')
        batch_op.drop_column('batch_id')
        batch_op.drop_column('result_kind')

    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_batches_owner_id'))

    op.drop_table('batches')

