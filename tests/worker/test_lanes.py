"""Priority lanes: a single upload goes by the interactive list, an album's chunks by the bulk one;
the reaper resends a job into its own lane and sees messages in both; the batcher puts an urgent
item ahead of those still waiting. Real Redis, real databases, a real worker."""
import io
import threading
from datetime import timedelta

import pytest
import redis
from sqlalchemy import update

from shared import jobs
from shared.celeryconf import BULK, INTERACTIVE, lane_for, lane_queue, lane_queues, worker_queues
from shared.db import make_engine, make_sessionmaker, session_scope
from shared.tables import Job, utcnow
from tests.helpers import images as make
from tests.helpers.services import wait_for
from tests.web.test_api import queued_messages
from worker import heartbeat
from worker.batcher import Batcher
from worker.reaper import Reaper


def post_single(client, seed: int = 0):
    return client.post("/api/v1/jobs", data={"image": (io.BytesIO(make.jpeg(seed=seed)), "dog.jpg")},
                       content_type="multipart/form-data")


def post_album(client, n: int):
    return client.post("/api/v1/batches", data={"image": [(io.BytesIO(make.jpeg(seed=i)), f"{i}.jpg") for i in range(n)]},
                       content_type="multipart/form-data")


def tasks_in(settings, lane: str) -> list[str]:
    return [m["headers"]["task"] for m in queued_messages(settings, lane)]


def test_the_lane_is_chosen_by_the_submit():
    assert lane_for(album=False) == INTERACTIVE
    assert lane_for(album=True) == BULK
    assert lane_for(album=True, wait=True) == INTERACTIVE  # sync mode: someone waits on it


def test_a_worker_serves_every_lane_interactive_first(settings):
    assert lane_queues(settings) == [settings.queue, f"{settings.queue}.bulk"]
    assert worker_queues(settings, [settings.queue, f"{settings.queue}.cpu"]) == [
        settings.queue, f"{settings.queue}.webhooks", f"{settings.queue}.cpu", f"{settings.queue}.bulk"]
    # one list of jobs, as before (webhook deliveries keep theirs)
    assert worker_queues(settings.with_(lanes=False), [settings.queue]) == [settings.queue, f"{settings.queue}.webhooks"]


def test_a_single_upload_takes_the_interactive_lane_and_an_album_the_bulk_lane(client, settings):
    assert post_album(client, 3).status_code == 202
    assert post_single(client).status_code == 202
    assert tasks_in(settings, INTERACTIVE) == ["dogbreed.classify"]
    assert tasks_in(settings, BULK) == ["dogbreed.classify_chunk"]
    # what a worker reads to tell the lanes apart (worker/tasks.py)
    assert [m["properties"]["delivery_info"]["routing_key"] for m in queued_messages(settings)] == lane_queues(settings)
    with session_scope(make_sessionmaker(make_engine(settings.database_url))) as s:
        assert sorted(lane for (lane,) in s.query(Job.lane)) == [BULK] * 3 + [INTERACTIVE]


def test_with_lanes_off_everything_goes_by_one_list(make_settings, redis_url, queue_name):
    from web.app import create_app

    settings = make_settings(broker_url=redis_url, queue=queue_name, lanes=False)
    app = create_app(settings)
    client = app.test_client()
    assert post_album(client, 2).status_code == 202 and post_single(client).status_code == 202
    assert lane_queue(settings, BULK) == settings.queue
    assert sorted(tasks_in(settings, INTERACTIVE)) == ["dogbreed.classify", "dogbreed.classify_chunk"]
    app.extensions["db_engine"].dispose()


def test_the_reaper_resends_a_stuck_job_into_its_own_lane_and_sees_both_lanes(client, settings):
    album_ids = [job["id"] for job in post_album(client, 2).json["jobs"]]
    single_id = post_single(client).json["id"]
    client_redis = redis.Redis.from_url(settings.broker_url)
    assert heartbeat.messages_in_broker(client_redis, lane_queues(settings)) == {*album_ids, single_id}
    client_redis.delete(*lane_queues(settings))  # Redis lost its data
    engine = make_engine(settings.database_url)
    with session_scope(make_sessionmaker(engine)) as s:
        s.execute(update(Job).values(enqueued_at=utcnow() - timedelta(hours=1)))
    engine.dispose()
    assert Reaper(settings.with_(job_deadline_s=60)).run_once()["requeued"] == 3
    resent = {lane: sorted(m["headers"]["id"] for m in queued_messages(settings, lane)) for lane in (INTERACTIVE, BULK)}
    assert resent == {INTERACTIVE: [single_id], BULK: sorted(album_ids)}
    assert Reaper(settings.with_(job_deadline_s=60)).run_once()["requeued"] == 0  # both lanes read: no double


def test_an_urgent_item_goes_ahead_of_those_still_waiting():
    batches, running, release = [], threading.Event(), threading.Event()

    def run(items):
        running.set()
        release.wait(5)
        batches.append(list(items))
        return items

    batcher = Batcher(run, max_batch=2, max_delay_s=0.0)
    first = batcher.submit("album-0")
    assert running.wait(5)  # the first batch is in the model; what comes now waits
    waiting = [batcher.submit(f"album-{i}") for i in range(1, 5)]
    urgent = batcher.submit("single", urgent=True)
    release.set()
    assert [f.result(timeout=5) for f in (first, *waiting, urgent)]
    assert batches[1] == ["single"]  # next, and alone: its pass is not made longer by album images
    batcher.close()


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_real_worker_runs_both_lanes(client, worker):
    album = post_album(client, 20).json
    single = post_single(client, seed=99).json

    def done(path):
        body = client.get(path).json
        return body if body.get("status") in jobs.FINISHED or (body.get("summary") or {}).get("done") else None

    assert wait_for(lambda: done(f"/api/v1/jobs/{single['id']}"), 90, what="the single job")["status"] == "succeeded"
    finished = wait_for(lambda: done(f"/api/v1/batches/{album['id']}"), 120, what="the album")
    assert finished["summary"]["succeeded"] == 20


def test_album_work_waits_for_an_interactive_job_at_its_next_stage():
    from worker.priority import InteractiveFirst

    first, order = InteractiveFirst(max_wait_s=30), []
    inside, leave = threading.Event(), threading.Event()

    def interactive():
        with first.turn():
            inside.set()
            leave.wait(10)
            order.append("single")

    def album_stage():
        first.wait_turn()
        order.append("album")

    threading.Thread(target=interactive).start()
    assert inside.wait(5)
    waiter = threading.Thread(target=album_stage)
    waiter.start()
    leave.set()
    waiter.join(10)
    assert order == ["single", "album"]
    first.wait_turn()  # nobody interactive: no wait
