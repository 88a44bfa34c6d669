"""Faults with real processes: workers killed mid-batch, Redis restarted empty, the database cut off."""
import concurrent.futures as cf
import io
import time

import pytest
from sqlalchemy import func, select

from cli.broker import start_redis_server
from shared.db import make_engine, make_sessionmaker, session_scope
from shared.tables import Job
from tests.e2e.test_worker import finished, submit
from tests.helpers import images as make
from tests.helpers.proxy import Proxy
from tests.helpers.services import WorkerProcess, postgres_admin_url, wait_for

pytestmark = pytest.mark.slow


def resilient(make_settings, broker_url: str, queue: str):
    """Short deadlines so the reaper acts within the test; enough attempts to survive the kills."""
    return make_settings(broker_url=broker_url, queue=queue, max_batch=8, max_batch_delay_ms=400,
                         job_deadline_s=4, reaper_interval_s=1, max_attempts=10)


def job_table(settings) -> dict[str, tuple[str, int, bool]]:
    engine = make_engine(settings.database_url)
    with session_scope(make_sessionmaker(engine)) as session:
        rows = {j.id: (j.status, j.attempts, j.result is not None) for j in session.scalars(select(Job))}
    engine.dispose()
    return rows


@pytest.fixture
def settings(make_settings, redis_url, queue_name):
    return resilient(make_settings, redis_url, queue_name)


def test_kill_9_workers_mid_batch_and_every_job_ends_exactly_once(settings, client, tmp_path):
    log = tmp_path / "workers.log"
    workers = [WorkerProcess(settings, log)]
    workers[-1].start()
    ids: list[str] = []
    try:
        for round_ in range(3):  # each round: a wave of jobs, and SIGKILL while some of it is running
            wave: list[str] = []
            pool = cf.ThreadPoolExecutor(4)
            for i in range(15 * round_, 15 * round_ + 15):
                pool.submit(lambda i=i: wave.append(submit(client, make.jpeg(200, 150, seed=i))))
            wait_for(lambda: any(job_table(settings)[j][0] == "running" for j in list(wave)), 60, 0.02,
                     "a job of this wave to be running in the live worker")
            workers[-1].kill()  # SIGKILL: no warm shutdown, no acks, batches in flight are lost
            pool.shutdown(wait=True)
            ids += wave
            workers.append(WorkerProcess(settings, log, node=f"again{round_}-{settings.queue}@localhost"))
            workers[-1].start()
        jobs = [finished(client, job_id, timeout_s=120) for job_id in ids]
    finally:
        for worker in workers:
            worker.stop()
    table = job_table(settings)
    assert len(table) == 45
    assert all(job["status"] == "succeeded" and job["result"] for job in jobs), [j["error"] for j in jobs if j["error"]]
    assert any(attempts > 1 for _, attempts, _ in table.values()), "the kills should have interrupted some jobs"
    # Redelivered messages may run again, but a finished job keeps its first and only result.
    assert all(status == "succeeded" and has_result for status, _, has_result in table.values())


def test_jobs_queued_when_redis_restarts_empty_still_complete(make_settings, queue_name, client_factory, tmp_path):
    redis_proc = start_redis_server()
    port = redis_proc.port
    settings = resilient(make_settings, f"redis://127.0.0.1:{port}/0", queue_name)
    client = client_factory(settings)
    try:
        ids = [submit(client, make.png(seed=i)) for i in range(10)]
        redis_proc.kill()  # no persistence: the queued messages are gone
        redis_proc.wait()
        redis_proc = start_redis_server(port)
        worker = WorkerProcess(settings, tmp_path / "worker.log")
        worker.start()
        try:
            jobs = [finished(client, job_id, timeout_s=90) for job_id in ids]
        finally:
            worker.stop()
        assert [j["status"] for j in jobs] == ["succeeded"] * 10
    finally:
        redis_proc.kill()


@pytest.fixture
def client_factory():
    from web.app import create_app

    apps = []

    def make_client(settings):
        apps.append(create_app(settings))
        return apps[-1].test_client()

    yield make_client
    for app in apps:
        app.extensions["db_engine"].dispose()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_database_cut_off_answers_503_then_recovers(make_settings, database_url, redis_url, queue_name, client_factory):
    from sqlalchemy.engine import make_url

    real = make_url(database_url)
    proxy = Proxy(real.host, real.port)
    settings = make_settings(broker_url=redis_url, queue=queue_name,
                             database_url=real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False))
    client = client_factory(settings)
    try:
        assert client.get("/api/v1/jobs").status_code == 200
        proxy.cut()
        for response in (client.get("/api/v1/jobs"),
                         client.post("/api/v1/jobs", data={"image": (io.BytesIO(make.jpeg()), "x.jpg")},
                                     content_type="multipart/form-data")):
            assert response.status_code == 503 and response.json["error"]["code"] == "database_unavailable"
            assert response.headers["Retry-After"]
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json["checks"]["database"].startswith("unreachable")
        proxy.restore()
        assert wait_for(lambda: client.get("/api/v1/jobs").status_code == 200, 20, 0.5, "the API to recover")
        assert submit(client, make.jpeg(seed=77))
    finally:
        proxy.close()
