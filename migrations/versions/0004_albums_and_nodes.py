"""One name per concept: the batches table becomes albums (jobs.batch_id -> jobs.album_id), and
jobs.worker, the name of the node that ran a job, becomes jobs.node

"Batch" now means only an inference batch. The API keeps its v1 names (/api/v1/batches, batch_id).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 10:00:00
"""
from __future__ import annotations

from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

# (old, new) names; constraints and indexes follow shared.tables.NAMING.
TABLES = ("batches", "albums")
COLUMNS = [("batch_id", "album_id"), ("worker", "node")]
# (table after the rename, (old name, old column), (new name, new column))
INDEXES = [(1, ("ix_batches_owner_id", "owner_id"), ("ix_albums_owner_id", "owner_id")),
           (0, ("ix_jobs_batch", "batch_id"), ("ix_jobs_album", "album_id"))]
CONSTRAINTS = [(1, "pk_batches", "pk_albums"), (1, "fk_batches_owner_id_users", "fk_albums_owner_id_users"),
               (0, "fk_jobs_batch_id_batches", "fk_jobs_album_id_albums")]


def _rename(forward: bool) -> None:
    """Forward: old names to new; back: new to old. Index 1 in INDEXES/CONSTRAINTS is the albums table, 0 jobs."""
    def pick(pair):
        return pair if forward else pair[::-1]

    postgres = op.get_bind().dialect.name == "postgresql"
    old_table, new_table = pick(TABLES)
    tables = ("jobs", new_table)
    op.execute(f"ALTER TABLE {old_table} RENAME TO {new_table}")  # SQLite repoints jobs' foreign key itself
    for old, new in map(pick, COLUMNS):
        op.execute(f"ALTER TABLE jobs RENAME COLUMN {old} TO {new}")
    for table, *pair in INDEXES:
        (old, _), (new, column) = pick(pair)
        if postgres:
            op.execute(f"ALTER INDEX {old} RENAME TO {new}")
        else:  # SQLite cannot rename an index
            op.drop_index(old, table_name=tables[table])
            op.create_index(new, tables[table], [column])
    if postgres:  # SQLite keeps constraint names inside the table's SQL, where nothing compares them
        for table, *pair in CONSTRAINTS:
            old, new = pick(pair)
            op.execute(f"ALTER TABLE {tables[table]} RENAME CONSTRAINT {old} TO {new}")


def upgrade() -> None:
    _rename(forward=True)


def downgrade() -> None:
    _rename(forward=False)
