"""Migrations: one head, they build the schema the tables describe, on SQLite and PostgreSQL."""
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from cli import db as migrate
from shared.db import make_engine
from shared.tables import Base


def test_one_head():
    heads = migrate.migration_heads("sqlite://")
    assert len(heads) == 1, f"migrations have {len(heads)} heads: {heads}; merge them with `alembic merge`"


def _assert_no_drift(url: str) -> None:
    engine = make_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
        tables = set(inspect(conn).get_table_names())
    engine.dispose()
    assert diff == [], f"tables and migrations differ; run `alembic revision --autogenerate`: {diff}"
    assert {"jobs", "users", "api_keys", "model_versions", "alembic_version"} <= tables


def test_upgrade_matches_tables_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    migrate.upgrade(url)
    migrate.upgrade(url)  # twice is a no-op
    _assert_no_drift(url)


@pytest.mark.postgres
def test_upgrade_matches_tables_on_postgres(empty_postgres_url):
    migrate.upgrade(empty_postgres_url)
    _assert_no_drift(empty_postgres_url)


def test_jobs_that_succeeded_before_0002_get_their_kind_for_the_history_filter(tmp_path):
    from sqlalchemy import text

    url = f"sqlite:///{tmp_path / 'm.db'}"
    migrate.upgrade(url, "0001")
    engine = make_engine(url)
    with engine.begin() as conn:
        for job_id, status, result in (("a", "succeeded", '{"kind": "dog"}'), ("b", "succeeded", '{"kind": "human"}'),
                                       ("c", "failed", None)):
            conn.execute(text("INSERT INTO jobs (id, status, created_at, attempts, image_sha256, image_bytes, "
                              "image_format, image_width, image_height, result) VALUES "
                              "(:id, :status, '2026-01-01 00:00:00', 1, 'x', 1, 'PNG', 1, 1, :result)"),
                         {"id": job_id, "status": status, "result": result})
    migrate.upgrade(url)
    with engine.connect() as conn:
        kinds = dict(conn.execute(text("SELECT id, result_kind FROM jobs ORDER BY id")).all())
    engine.dispose()
    assert kinds == {"a": "dog", "b": "human", "c": None}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'm.db'}"
    return request.getfixturevalue("empty_postgres_url")


def test_0004_renames_batches_to_albums_and_worker_to_node_keeping_the_rows_and_back(empty_url):
    from alembic import command
    from sqlalchemy import text

    migrate.upgrade(empty_url, "0003")
    engine = make_engine(empty_url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO batches (id, created_at, items) VALUES ('al', '2026-01-01 00:00:00', '[]')"))
        conn.execute(text("INSERT INTO jobs (id, status, created_at, attempts, image_sha256, image_bytes, image_format, "
                          "image_width, image_height, batch_id, worker, pipeline) VALUES ('j', 'succeeded', "
                          "'2026-01-01 00:00:00', 1, 'x', 1, 'PNG', 1, 1, 'al', 'node-1@host', 'classify')"))
    migrate.upgrade(empty_url)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT album_id, node FROM jobs")).one() == ("al", "node-1@host")
        assert conn.execute(text("SELECT id FROM albums")).scalars().all() == ["al"]
        conn.execute(text("DELETE FROM albums"))  # the foreign key follows the table: the job keeps its row
        assert conn.execute(text("SELECT album_id FROM jobs")).scalar() is None
    engine.dispose()
    _assert_no_drift(empty_url)
    command.downgrade(migrate.alembic_config(empty_url), "0003")
    engine = make_engine(empty_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT worker FROM jobs")).scalar() == "node-1@host"
        assert "batches" in inspect(conn).get_table_names() and "albums" not in inspect(conn).get_table_names()
    engine.dispose()
    migrate.upgrade(empty_url)
    _assert_no_drift(empty_url)


def test_each_test_database_is_a_migrated_copy_and_migrating_it_again_changes_nothing(database_url):
    """Tests get copies of one migrated template; `dogbreed up` migrates at start, so on such a copy
    (as on any database already at head) that must be a no-op, and the copy must be the real schema."""
    from alembic.script import ScriptDirectory

    def revision() -> str | None:
        engine = make_engine(database_url)
        with engine.connect() as conn:
            found = MigrationContext.configure(conn).get_current_revision()
        engine.dispose()
        return found

    head = ScriptDirectory.from_config(migrate.alembic_config(database_url)).get_current_head()
    assert revision() == head
    migrate.upgrade(database_url)
    assert revision() == head
    _assert_no_drift(database_url)
