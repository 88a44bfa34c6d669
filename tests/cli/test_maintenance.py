"""`dogbreed gc` and `dogbreed reap` as an operator runs them."""
import os
from datetime import timedelta
import subprocess
import sys
import time

import pytest
import redis
from sqlalchemy import update

from shared import jobs
from shared.db import make_engine, make_sessionmaker, session_scope
from shared.storage import ImageStore
from shared.tables import Job
from tests.helpers import images as make
from tests.helpers.services import ROOT, settings_env


def dogbreed(settings, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **settings_env(settings)}
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def add_job(sessions, store, data: bytes, status: str, age_days: int) -> str:
    sha, path = store.put(data, "png")
    stamp = time.time() - age_days * 86400
    os.utime(path, (stamp, stamp))  # stored as long ago as its job: past gc's grace period
    with session_scope(sessions) as s:
        job = jobs.create_job(s, owner_id=None, sha256=sha, size=len(data), fmt="PNG", width=8, height=8, filename=None)
        old = jobs.utcnow() - timedelta(days=age_days)
        s.execute(update(Job).where(Job.id == job.id).values(status=status, created_at=old, enqueued_at=old, started_at=old))
        return job.id


@pytest.fixture
def sessions(settings):
    engine = make_engine(settings.database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


def test_gc_deletes_old_finished_jobs_and_only_unused_images(settings, sessions):
    store = ImageStore(settings.storage_dir)
    shared_img, lonely_img = make.png(seed=1), make.png(seed=2)
    old_shared = add_job(sessions, store, shared_img, "succeeded", 40)
    add_job(sessions, store, shared_img, "succeeded", 1)
    add_job(sessions, store, lonely_img, "failed", 40)
    add_job(sessions, store, make.png(seed=3), "running", 40)  # unfinished: the reaper's, not gc's
    dry = dogbreed(settings, "gc", "--days", "30", "--dry-run")
    assert dry.returncode == 0 and "would delete 2 job(s)" in dry.stdout and "1 image(s)" in dry.stdout
    result = dogbreed(settings, "gc", "--days", "30")
    assert result.returncode == 0, result.stderr
    assert "deleted 2 job(s)" in result.stdout and "1 image(s)" in result.stdout
    with session_scope(sessions) as s:
        assert s.query(Job).count() == 2 and s.get(Job, old_shared) is None
    assert len([p for p in settings.storage_dir.rglob("*.png")]) == 2


def test_reap_requeues_stuck_jobs_and_fails_those_out_of_attempts(settings, sessions):
    store = ImageStore(settings.storage_dir)
    stuck = add_job(sessions, store, make.png(seed=4), "running", 1)
    tired = add_job(sessions, store, make.png(seed=5), "queued", 1)
    with session_scope(sessions) as s:
        s.execute(update(Job).where(Job.id == tired).values(attempts=settings.max_attempts))
    result = dogbreed(settings, "reap")
    assert result.returncode == 0 and "re-enqueued 1" in result.stdout and "failed 1" in result.stdout
    with session_scope(sessions) as s:
        assert s.get(Job, stuck).status == "queued" and s.get(Job, tired).status == "failed"
    assert redis.Redis.from_url(settings.broker_url).llen(settings.queue) == 1


def test_a_cli_error_names_the_fix_not_a_traceback(settings, tmp_path):
    result = dogbreed(settings.with_(database_url=f"sqlite:///{tmp_path / 'empty.db'}"), "models", "list")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "dogbreed db upgrade" in result.stderr
