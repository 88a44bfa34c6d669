"""The job page follows its job by server-sent events, and falls back to polling where a stream is refused."""
import pytest
import redis

from shared import job_events, jobs
from tests.browser.test_pages import upload_one
from tests.factories import database

pytestmark = pytest.mark.slow


def cancel_elsewhere(settings, job_id: str) -> None:
    """What a cancel in another web process does: commit the end, then publish it."""
    client = redis.Redis.from_url(settings.broker_url)
    with database(settings.database_url) as session:
        assert jobs.cancel(session, job_id)
        session.commit()
        job_events.publish(session, client, settings.queue)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_job_page_is_pushed_its_end(page, settings):
    upload_one(page, "wait.jpg", seed=3)  # no worker: the job stays queued until it is canceled
    page.wait_for_url("**/jobs/*")
    assert page.text_content("#status") == "queued"
    page.wait_for_function("window.dogbreedUpdates === 'events'")
    cancel_elsewhere(settings, page.url.rstrip("/").rsplit("/", 1)[-1])
    page.wait_for_function("document.getElementById('status').textContent === 'canceled'")
    assert page.evaluate("window.dogbreedUpdates") == "events"  # it came by the stream, not by polling


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_where_the_stream_is_refused_the_page_polls(browser, make_settings, redis_url, queue_name):
    from tests.browser.conftest import PASSWORD
    from tests.factories import make_user
    from tests.helpers.live import LiveServer
    from web.app import create_app

    settings = make_settings(broker_url=redis_url, queue=queue_name, auth_required=True, max_waiters=0)
    with database(settings.database_url) as s:
        make_user(s, "bea", password=PASSWORD)
    app = create_app(settings)
    server = LiveServer(app).start()
    context = browser.new_context(base_url=server.url)
    try:
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto("/login")
        page.fill("input[name=name]", "bea")
        page.fill("input[name=password]", PASSWORD)
        page.keyboard.press("Enter")
        page.wait_for_url(server.url + "/")
        upload_one(page, "wait.jpg", seed=4)
        page.wait_for_url("**/jobs/*")
        page.wait_for_function("window.dogbreedUpdates === 'polling'")  # 503 too_many_waiters: polling instead
        cancel_elsewhere(settings, page.url.rstrip("/").rsplit("/", 1)[-1])
        page.wait_for_function("document.getElementById('status').textContent === 'canceled'")
    finally:
        context.close()
        server.stop()
        app.extensions["db_engine"].dispose()
