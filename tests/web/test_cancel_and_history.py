"""Cancel (DELETE /api/v1/jobs/<id>) and the history filters, on a real database and Redis broker."""
from datetime import datetime, timezone

import pytest
from sqlalchemy import update

from shared import jobs
from shared.tables import Job
from tests.helpers import images as make
from tests.web.test_api import upload


def finish(app, job_id: str, kind: str | None = None, created: str | None = None) -> None:
    """What a worker would write (the API cannot), and a chosen creation time."""
    from web.database import db

    with app.app_context():
        if kind:
            jobs.succeed(db(), job_id, {"kind": kind, "sentence": f"a {kind}"})
        if created:
            db().execute(update(Job).where(Job.id == job_id)
                         .values(created_at=datetime.fromisoformat(created).replace(tzinfo=timezone.utc)))
        db().commit()


def test_cancel_a_queued_job_then_cancelling_again_is_409(client):
    job_id = upload(client, make.jpeg()).json["id"]
    response = client.delete(f"/api/v1/jobs/{job_id}")
    assert response.status_code == 200 and response.json["status"] == "canceled"
    assert response.json["finished_at"] and response.json["result"] is None
    again = client.delete(f"/api/v1/jobs/{job_id}")
    assert again.status_code == 409 and again.json["error"]["code"] == "job_finished"
    assert "canceled" in again.json["error"]["message"]
    assert client.get(f"/api/v1/jobs/{job_id}").json["status"] == "canceled"


def test_cancelling_a_finished_job_is_409_and_keeps_its_result(client, app):
    job_id = upload(client, make.jpeg()).json["id"]
    finish(app, job_id, kind="dog")
    response = client.delete(f"/api/v1/jobs/{job_id}")
    assert response.status_code == 409 and response.json["error"]["code"] == "job_finished"
    job = client.get(f"/api/v1/jobs/{job_id}").json
    assert job["status"] == "succeeded" and job["result"]["kind"] == "dog"


def test_cancel_unknown_job_is_404(client):
    response = client.delete("/api/v1/jobs/nope")
    assert response.status_code == 404 and response.json["error"]["code"] == "job_not_found"


def test_job_page_has_a_cancel_button_that_works_without_javascript(client):
    job_id = upload(client, make.jpeg()).json["id"]
    page = client.get(f"/jobs/{job_id}").data.decode()
    assert 'id="cancel"' in page and 'aria-live="polite"' in page
    with client.session_transaction() as session:
        session["csrf"] = "token"
    response = client.post(f"/jobs/{job_id}/cancel", data={"csrf_token": "token"})
    assert response.status_code == 303
    assert client.get(f"/api/v1/jobs/{job_id}").json["status"] == "canceled"
    assert 'id="cancel-form"\n          hidden' in client.get(f"/jobs/{job_id}").data.decode()


def test_history_filters_by_status_kind_and_time(client, app):
    ids = [upload(client, make.jpeg(seed=i)).json["id"] for i in range(5)]
    finish(app, ids[0], kind="dog", created="2026-01-01T10:00:00")
    finish(app, ids[1], kind="human", created="2026-01-02T10:00:00")
    finish(app, ids[2], kind="dog", created="2026-01-03T10:00:00")
    client.delete(f"/api/v1/jobs/{ids[3]}")

    def found(query: str) -> list[str]:
        response = client.get(f"/api/v1/jobs?{query}")
        assert response.status_code == 200, response.json
        return [j["id"] for j in response.json["jobs"]]

    assert found("status=succeeded") == [ids[2], ids[1], ids[0]]
    assert found("status=canceled") == [ids[3]]
    assert found("status=queued") == [ids[4]]
    assert found("kind=dog") == [ids[2], ids[0]]
    assert found("kind=dog&since=2026-01-02") == [ids[2]]
    assert found("since=2026-01-01T12:00:00Z&until=2026-01-03") == [ids[2], ids[1]]  # a date alone: to its end
    assert found("until=2026-01-02T00:00:00%2B00:00") == [ids[0]]
    page = client.get("/api/v1/jobs?status=succeeded&per_page=1").json
    assert page["total"] == 3 and "status=succeeded" in page["next"]


@pytest.mark.parametrize("query, named", [
    ("status=done", "status"), ("kind=cat", "kind"), ("since=yesterday", "since"),
    ("until=2026-13-01", "until"), ("since=2026-02-01&until=2026-01-01", "before"),
])
def test_bad_history_filters_are_400_naming_the_fix(client, query, named):
    response = client.get(f"/api/v1/jobs?{query}")
    assert response.status_code == 400 and response.json["error"]["code"] == "bad_filter"
    assert named in response.json["error"]["message"]
    page = client.get(f"/history?{query}")
    assert page.status_code == 400 and named.encode() in page.data


def test_history_page_filters_and_keeps_them_in_the_pager(client, app):
    ids = [upload(client, make.jpeg(seed=i)).json["id"] for i in range(3)]
    client.delete(f"/api/v1/jobs/{ids[0]}")
    page = client.get("/history?status=canceled").data.decode()
    assert "1 job matches" in page and ids[0] in page and ids[1] not in page
    assert '<option value="canceled" selected>' in page


def test_with_accounts_off_anyone_here_may_label_and_no_one_is_named(client):
    job_id = upload(client, make.jpeg()).json["id"]
    response = client.put(f"/api/v1/jobs/{job_id}/label", json={"breed": "st. bernard"})
    assert response.status_code == 200, response.json
    assert response.json["label"]["breed"] == "Saint Bernard" and "labeled_by" not in response.json["label"]
    assert client.get("/api/v1/jobs?labeled=true").json["total"] == 1


def test_history_filters_with_a_utc_offset_or_at_the_end_of_time(client, app):
    """Issue 18, item 18: an offset moves the instant (SQLite compared the wall-clock text), and
    until=9999-12-31 (to the end of time) answered 500."""
    ids = [upload(client, make.jpeg(seed=20 + i)).json["id"] for i in range(2)]
    finish(app, ids[0], kind="dog", created="2026-01-01T10:00:00")  # 10:00 UTC = 12:00 at +02:00
    finish(app, ids[1], kind="dog", created="2026-01-01T14:00:00")

    def found(query: str) -> list[str]:
        response = client.get(f"/api/v1/jobs?{query}")
        assert response.status_code == 200, response.json
        return [j["id"] for j in response.json["jobs"]]

    assert found("since=2026-01-01T11:00:00%2B02:00") == [ids[1], ids[0]]  # 09:00 UTC
    assert found("since=2026-01-01T13:00:00%2B02:00") == [ids[1]]  # 11:00 UTC
    assert found("until=2026-01-01T09:00:00-03:00") == [ids[0]]  # 12:00 UTC
    assert found("until=9999-12-31") == [ids[1], ids[0]]
    assert found("since=0001-01-01&until=9999-12-31T23:59:59-05:00") == [ids[1], ids[0]]
    assert client.get("/history?until=9999-12-31").status_code == 200
