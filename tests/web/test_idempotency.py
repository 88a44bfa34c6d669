"""Idempotency-Key on submit: a retried POST answers with the first job and costs no rate limit."""
import pytest

from tests.factories import database, make_job, make_key, make_user
from tests.helpers import images as make
from tests.web.test_api import job_rows, queued_messages, upload


def test_same_key_same_image_answers_the_first_job_with_200(client, app, settings):
    data = make.jpeg(seed=1)
    first = upload(client, data, headers={"Idempotency-Key": "order-17"})
    again = upload(client, data, headers={"Idempotency-Key": "order-17"})
    assert first.status_code == 202 and again.status_code == 200
    assert again.json["id"] == first.json["id"] and again.headers["Location"] == first.json["url"]
    assert len(job_rows(app)) == 1 and len(queued_messages(settings)) == 1


def test_same_key_other_image_is_409_and_makes_no_job(client, app):
    first = upload(client, make.jpeg(seed=1), headers={"Idempotency-Key": "k"})
    clash = upload(client, make.jpeg(seed=2), headers={"Idempotency-Key": "k"})
    assert clash.status_code == 409 and clash.json["error"]["code"] == "idempotency_key_reused"
    assert first.json["id"] in clash.json["error"]["message"]
    assert len(job_rows(app)) == 1


def test_other_keys_and_no_key_make_new_jobs(client, app):
    data = make.jpeg(seed=1)
    ids = {upload(client, data, headers={"Idempotency-Key": key}).json["id"] for key in ("a", "b")}
    ids |= {upload(client, data).json["id"] for _ in range(2)}
    assert len(ids) == 4 and len(job_rows(app)) == 4


def test_a_replay_does_not_count_against_the_rate_limit(make_settings, redis_url, queue_name):
    from web.app import create_app

    client = create_app(make_settings(broker_url=redis_url, queue=queue_name, rate_limit_per_minute=2)).test_client()
    data = make.jpeg(seed=5)
    assert upload(client, data, headers={"Idempotency-Key": "once"}).status_code == 202
    for _ in range(3):  # lost answers, retried: each gets the first job back
        assert upload(client, data, headers={"Idempotency-Key": "once"}).status_code == 200
    assert upload(client, make.jpeg(seed=6)).status_code == 202  # the second of two allowed
    assert upload(client, make.jpeg(seed=7)).status_code == 429


def test_keys_belong_to_their_user(make_settings, redis_url, queue_name):
    from web.app import create_app

    settings = make_settings(broker_url=redis_url, queue=queue_name, auth_required=True)
    with database(settings.database_url) as s:
        keys = [make_key(s), make_key(s)]
    client = create_app(settings).test_client()
    data = make.jpeg(seed=9)
    ids = [upload(client, data, headers={"Idempotency-Key": "same", "Authorization": f"Bearer {key}"}).json["id"]
           for key in keys]
    assert ids[0] != ids[1]


@pytest.mark.parametrize("key", ["", "x" * 256])
def test_a_bad_key_is_400(client, key):
    response = upload(client, make.jpeg(), headers={"Idempotency-Key": key})
    assert response.status_code == 400 and response.json["error"]["code"] == "bad_idempotency_key"


def test_a_key_older_than_24_hours_names_a_new_job(client, app):
    from datetime import timedelta

    from sqlalchemy import update

    from shared.tables import Job, utcnow
    from web.database import db

    first = upload(client, make.jpeg(seed=1), headers={"Idempotency-Key": "daily"}).json["id"]
    with app.app_context():
        db().execute(update(Job).where(Job.id == first).values(created_at=utcnow() - timedelta(hours=25)))
        db().commit()
    later = upload(client, make.jpeg(seed=2), headers={"Idempotency-Key": "daily"})
    assert later.status_code == 202 and later.json["id"] != first
    assert upload(client, make.jpeg(seed=2), headers={"Idempotency-Key": "daily"}).json["id"] == later.json["id"]


def test_the_database_holds_one_live_job_per_owner_and_key(app):
    """What makes two simultaneous retries safe: the second insert fails and answers with the first."""
    from sqlalchemy.exc import IntegrityError

    from web.database import db

    with app.app_context():
        owner = make_user(db()).id
        for _ in range(2):
            try:
                make_job(db(), owner_id=owner, idempotency_key="same")
                db().commit()
            except IntegrityError:
                db().rollback()
                break
        else:
            pytest.fail("two live jobs share an owner and an Idempotency-Key")
