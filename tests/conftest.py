"""Fixtures on real services: Redis, SQLite and PostgreSQL, a Celery worker process, the Flask app."""
from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from shared.db import make_engine, make_sessionmaker
from tests.helpers import images as image_factory
from tests.helpers.services import (
    LIVE_WORKERS,
    REAL_DATA,
    REAL_MODELS,
    WorkerProcess,
    ensure_redis,
    postgres_admin_url,
    postgres_answers,
)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(scope="session", autouse=True)
def _every_api_answer_matches_the_openapi_document():
    """Every Flask test client the suite makes checks API responses against web/openapi.py."""
    from flask import Flask

    from tests.helpers.openapi import CheckedClient

    Flask.test_client_class = CheckedClient
    yield
    Flask.test_client_class = None


@pytest.fixture(scope="session", autouse=True)
def _no_worker_outlives_the_session():
    """Workers run in their own process group; a failed test must not leave one consuming."""
    yield
    for worker in list(LIVE_WORKERS):
        worker.stop()


# ---- Redis ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def redis_url() -> str:
    url, reason = ensure_redis()
    if url is None:
        pytest.skip(reason)
    return url


@pytest.fixture
def queue_name() -> str:
    """A queue of this test's own, so tests never take each other's messages."""
    return f"test-{uuid.uuid4().hex[:10]}"


# ---- databases -----------------------------------------------------------------------------
@pytest.fixture(scope="session")
def postgres_server() -> str:
    admin = postgres_admin_url()
    if not postgres_answers(admin):
        pytest.skip(f"no PostgreSQL answers at {admin} (set DOGBREED_TEST_POSTGRES_URL to test against one)")
    return admin


def _new_postgres_db(admin: str, template: str | None = None) -> tuple[str, str]:
    """A database of its own, empty or (with `template`) a copy of that one; its URL and name."""
    name = f"dogbreed_t_{uuid.uuid4().hex[:12]}"
    copy_of = f' TEMPLATE "{template}"' if template else ""
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"{copy_of}'))
    engine.dispose()
    return admin.rsplit("/", 1)[0] + f"/{name}", name


def _drop_postgres_db(admin: str, name: str) -> None:
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


# Migrating costs 0.35 s on SQLite and 0.55 s on PostgreSQL; copying a migrated template costs little.
# Tests of the migrations themselves start from empty databases (tmp_path files, empty_postgres_url).
@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A SQLite file migrated to head once per run; each test works on a copy of it."""
    from cli import db as migrate

    path = tmp_path_factory.mktemp("template") / "dogbreed.db"
    migrate.upgrade(f"sqlite:///{path}")
    # Alembic's engine is disposed, so WAL was checkpointed into the file: the file alone is the database.
    assert not path.with_name(path.name + "-wal").exists(), "the template's WAL was not checkpointed"
    return path


@pytest.fixture(scope="session")
def postgres_template(postgres_server) -> Iterator[str]:
    """A PostgreSQL database migrated to head once per run, the TEMPLATE of each test's database.

    CREATE DATABASE ... TEMPLATE refuses while anyone is connected to the template; migrations/env.py
    disposes its engine, and nothing else ever connects to it."""
    from cli import db as migrate

    url, name = _new_postgres_db(postgres_server)
    migrate.upgrade(url)
    yield name
    _drop_postgres_db(postgres_server, name)


@pytest.fixture
def sqlite_url(tmp_path, sqlite_template) -> str:
    """A migrated SQLite database of this test's own: a copy of the template."""
    path = tmp_path / "dogbreed.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request) -> Iterator[str]:
    """A migrated database of this test's own: a copy of the SQLite template, or a PostgreSQL
    database made from the template database (dropped afterwards)."""
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_url")
        return
    admin = request.getfixturevalue("postgres_server")
    url, name = _new_postgres_db(admin, template=request.getfixturevalue("postgres_template"))
    yield url
    _drop_postgres_db(admin, name)


@pytest.fixture
def sessions(database_url) -> Iterator[sessionmaker[Session]]:
    """Sessions on this test's database, for tests that drive the data modules directly."""
    engine = make_engine(database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def empty_postgres_url(postgres_server) -> Iterator[str]:
    """A PostgreSQL database with nothing in it, for tests of the migrations themselves."""
    url, name = _new_postgres_db(postgres_server)
    yield url
    _drop_postgres_db(postgres_server, name)


# ---- settings, app, worker -----------------------------------------------------------------
# The team's YuNet file where the checkout has it; elsewhere the Haar cascade, never a download.
_YUNET = REAL_MODELS / "face_detection_yunet_2026may.onnx"
TEST_FACES = {"face_detector": "yunet", "face_model": str(_YUNET)} if _YUNET.is_file() else {"face_detector": "haar"}


@pytest.fixture
def make_settings(tmp_path, database_url):
    from shared.settings import Settings

    def make(**overrides):
        base = Settings(
            var_dir=tmp_path / "var",
            database_url=database_url,
            storage_dir=tmp_path / "images",
            model_dir=tmp_path / "models",
            backbone="tiny",
            backbone_weights="random",
            **TEST_FACES,
            secret_key="test-secret",
            auth_required=False,
        )
        return base.with_(**overrides)

    return make


@pytest.fixture
def settings(make_settings, redis_url, queue_name):
    return make_settings(broker_url=redis_url, queue=queue_name)


@pytest.fixture
def app(settings):
    from web.app import create_app

    app = create_app(settings)
    app.config["TESTING"] = True
    yield app
    app.extensions["db_engine"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def live(app):
    """The app served over real HTTP on a free loopback port (for browsers and the typed client)."""
    from tests.helpers.live import LiveServer

    server = LiveServer(app).start()
    yield server
    server.stop()


@pytest.fixture
def worker(settings, tmp_path):
    """A real `dogbreed worker` process (Celery, threads pool, tiny backbone) on this test's queue."""
    proc = WorkerProcess(settings, tmp_path / "worker.log")
    proc.start()
    yield proc
    proc.stop()


# ---- a local HTTP origin ------------------------------------------------------------------
@pytest.fixture
def origin():
    """A real HTTP server on loopback whose paths answer as the test says (tests/helpers/origin.py):
    for image_url fetches and webhook receivers alike."""
    from tests.helpers.origin import Origin

    server = Origin()
    server.start()
    yield server
    server.stop()


# ---- S3 ------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory) -> str:
    """moto's S3 server on a free loopback port, for the whole session; skips with the reason if it cannot start."""
    from tests.helpers.s3 import CREDENTIALS, MotoServer

    for key, value in CREDENTIALS.items():
        os.environ.setdefault(key, value)
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log")
    reason = server.start()
    if reason:
        pytest.skip(reason)
    yield server.url
    server.stop()


@pytest.fixture
def s3_settings(settings, s3_endpoint):
    """`settings` with images and models in a fresh bucket of moto's server."""
    from tests.helpers.s3 import new_bucket

    return settings.with_(storage_url=f"s3://{new_bucket(s3_endpoint)}/dogbreed", s3_endpoint_url=s3_endpoint)


# ---- images --------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def real_data() -> Path:
    if not REAL_DATA.is_dir():
        pytest.skip(f"{REAL_DATA} is absent: the team's real photos live beside the checkout, not on a user's machine")
    return REAL_DATA


@pytest.fixture(scope="session")
def real_models() -> Path:
    if not (REAL_MODELS / "mobilenet_v2_imagenet.keras").is_file():
        pytest.skip(f"{REAL_MODELS} has no real ImageNet weights (only the team's checkout has them)")
    return REAL_MODELS


@pytest.fixture
def images():
    return image_factory
