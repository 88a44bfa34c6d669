"""`dogbreed gc` and `dogbreed reap` as an operator runs them."""
import os
import subprocess
import sys

import pytest
import redis

from shared import jobs
from shared.db import session_scope
from shared.storage import FolderImageStore
from shared.tables import Job
from tests.factories import ago, make_job
from tests.helpers import images as make
from tests.helpers.services import ROOT, settings_env


def dogbreed(settings, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **settings_env(settings)}
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def add_job(sessions, store, data: bytes, status: str, age_days: int, **columns) -> str:
    """A job on a stored image, both as old as `age_days`."""
    sha, path = store.store(data, "png")[:2]
    old = ago(days=age_days)
    os.utime(path, (old.timestamp(), old.timestamp()))  # an upload as old as its job
    with session_scope(sessions) as s:
        return make_job(s, sha256=sha, size=len(data), status=status, created_at=old, enqueued_at=old,
                        started_at=old, **columns).id


def test_gc_deletes_old_finished_jobs_and_only_unused_images(settings, sessions):
    store = FolderImageStore(settings.storage_dir)
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


def test_gc_never_deletes_an_image_uploaded_again_while_it_runs(settings, sessions):
    """The same bytes arrive again after gc found the image unused, before their row commits."""
    from worker.retention import expire

    store = FolderImageStore(settings.storage_dir)
    data = make.png(seed=21)
    add_job(sessions, store, data, "succeeded", 40)
    sha, path = store.store(data, "png")[:2]  # the new upload: stored, its row not committed yet
    with session_scope(sessions) as s:
        gone = expire(s, store, 30)
    assert (gone.jobs, gone.images) == (1, 0) and path.exists()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_gc_copes_with_a_backlog_larger_than_one_statement_can_bind(settings, sessions):
    """70,000 expired jobs with distinct images: more than PostgreSQL's 65,535 parameters."""
    from sqlalchemy import text

    with session_scope(sessions) as s:
        s.execute(text(
            "INSERT INTO jobs (id, status, created_at, attempts, image_sha256, image_bytes, image_format, "
            "image_width, image_height) SELECT 'old' || g, 'succeeded', now() - interval '40 days', 1, "
            "lpad(to_hex(g), 64, '0'), 1, 'PNG', 8, 8 FROM generate_series(1, 70000) AS g"))
    result = dogbreed(settings, "gc", "--days", "30")
    assert result.returncode == 0, result.stderr
    assert "deleted 70000 job(s)" in result.stdout
    with session_scope(sessions) as s:
        assert s.query(Job).count() == 0


def test_reap_requeues_stuck_jobs_and_fails_those_out_of_attempts(settings, sessions):
    store = FolderImageStore(settings.storage_dir)
    stuck = add_job(sessions, store, make.png(seed=4), "running", 1)
    tired = add_job(sessions, store, make.png(seed=5), "queued", 1, attempts=settings.max_attempts)
    result = dogbreed(settings, "reap")
    assert result.returncode == 0 and "re-enqueued 1" in result.stdout and "failed 1" in result.stdout
    with session_scope(sessions) as s:
        assert s.get(Job, stuck).status == "queued" and s.get(Job, tired).status == "failed"
    assert redis.Redis.from_url(settings.broker_url).llen(settings.queue) == 1


def test_a_dead_workers_running_jobs_go_back_at_once_and_a_restarted_node_takes_back_its_own(settings, sessions):
    """No deadline to wait for: a node without a heartbeat runs nothing, and a node that (re)starts
    runs nothing yet. Jobs out of attempts are failed instead of resent."""
    from shared.redis_keys import alive_nodes
    from worker.heartbeat import Heartbeat
    from worker.reaper import Reaper

    store = FolderImageStore(settings.storage_dir)
    client = redis.Redis.from_url(settings.broker_url)
    nodes = {"live": "live@h", "dead": "dead@h", "dead-tired": "dead@h", "restarted": "again@h"}
    ids = {name: add_job(sessions, store, make.png(seed=10 + i), "running", 0, node=node,
                         attempts=settings.max_attempts if name == "dead-tired" else 1)
           for i, (name, node) in enumerate(nodes.items())}
    beats = [Heartbeat(client, settings.queue, node, 30) for node in ("live@h", "again@h")]
    for beat in beats:
        beat.beat()
    reaper = Reaper(settings)
    try:
        assert alive_nodes(client, settings.queue) == {"live@h", "again@h"}
        assert reaper.reap_orphans() == {"requeued": 1, "failed": 1}
        assert reaper.take_back("again@h", jobs.utcnow()) == {"requeued": 1, "failed": 0}
    finally:
        for beat in beats:
            beat.stop()
    with session_scope(sessions) as s:
        got = {name: s.get(Job, job_id).status for name, job_id in ids.items()}
    assert got == {"live": "running", "dead": "queued", "dead-tired": "failed", "restarted": "queued"}
    assert client.llen(settings.queue) == 2
    assert alive_nodes(client, settings.queue) == set()  # a clean stop removes the heartbeat at once


def test_reap_resends_the_jobs_own_task_and_leaves_a_job_whose_message_still_waits(settings, sessions):
    """A job in a long queue still has its message: no second one each deadline. A no-op job gets
    `dogbreed.noop` again, not a classification."""
    import json

    from shared.celeryconf import make_celery

    store = FolderImageStore(settings.storage_dir)
    waiting = add_job(sessions, store, make.png(seed=30), "queued", 1)
    noop = add_job(sessions, store, make.png(seed=31), "running", 1, pipeline="noop")
    celery = make_celery(settings)
    celery.send_task("dogbreed.classify", args=[waiting], queue=settings.queue)  # its message, still waiting
    celery.close()
    for _ in range(2):
        assert dogbreed(settings, "reap").returncode == 0
    client = redis.Redis.from_url(settings.broker_url)
    tasks = [json.loads(raw)["headers"]["task"] for raw in client.lrange(settings.queue, 0, -1)]
    assert sorted(tasks) == ["dogbreed.classify", "dogbreed.noop"]  # the waiting one's own, and ONE resend
    with session_scope(sessions) as s:
        assert s.get(Job, waiting).status == "queued" and s.get(Job, noop).status == "queued"


def test_a_cli_error_names_the_fix_not_a_traceback(settings, tmp_path):
    result = dogbreed(settings.with_(database_url=f"sqlite:///{tmp_path / 'empty.db'}"), "models", "list")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "dogbreed db upgrade" in result.stderr


def test_gc_keeps_a_labeled_job_and_its_image_until_the_label_is_withdrawn(settings, sessions):
    from shared import labels
    from worker.retention import expire

    store = FolderImageStore(settings.storage_dir)
    labeled = add_job(sessions, store, make.png(seed=31), "succeeded", 40)
    add_job(sessions, store, make.png(seed=32), "succeeded", 40)
    with session_scope(sessions) as s:
        labels.put(s, labeled, kind="dog", breed="Shikoku", user_id=None)
    with session_scope(sessions) as s:
        gone = expire(s, store, 30, grace_s=0)
    assert (gone.jobs, gone.images) == (1, 1)
    with session_scope(sessions) as s:
        job = s.get(Job, labeled)
        assert job is not None and store.exists(job.image_sha256, "png")
        labels.delete(s, labeled)
    with session_scope(sessions) as s:
        assert expire(s, store, 30, grace_s=0).jobs == 1
    assert list(settings.storage_dir.rglob("*.png")) == []
