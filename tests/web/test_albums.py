"""Albums: POST /api/v1/batches with several `image` parts; a bad file fails alone, in its place."""
import base64
import io
import json

from tests.factories import ago, album_job_ids, database, make_album, make_key, make_user
from tests.helpers import images as make
from tests.web.test_api import job_rows, queued_messages


def post_album(client, files: list[tuple[bytes, str]], path: str = "/api/v1/batches", **kwargs):
    return client.post(path, data={"image": [(io.BytesIO(data), name) for data, name in files]},
                       content_type="multipart/form-data", **kwargs)


def test_an_album_makes_one_job_per_good_file_and_keeps_the_order(client, app, settings):
    response = post_album(client, [(make.jpeg(seed=1), "a.jpg"), (b"not an image", "notes.jpg"),
                                   (make.png(seed=2), "b.png")])
    assert response.status_code == 202, response.json
    body = response.json
    assert response.headers["Location"] == body["url"] and body["url"].endswith(f"/api/v1/batches/{body['id']}")
    first, bad, last = body["jobs"]
    assert first["status"] == "queued" and first["image"]["filename"] == "a.jpg" and first["batch_id"] == body["id"]
    assert bad == {"filename": "notes.jpg", "error": {"code": "not_an_image", "message": bad["error"]["message"]}}
    assert last["image"]["format"] == "PNG"
    assert body["summary"] == {"queued": 2, "running": 0, "succeeded": 0, "failed": 0, "canceled": 0,
                               "rejected": 1, "total": 3, "done": False}
    assert len(job_rows(app)) == 2
    assert [chunk_of(m) for m in queued_messages(settings)] == [("dogbreed.classify_chunk", [first["id"], last["id"]])]


def chunk_of(message: dict) -> tuple[str, list[str]]:
    """The task a queued kombu message names, and its one argument."""
    body = json.loads(base64.b64decode(message["body"]))
    return message["headers"]["task"], body[0][0]


def test_an_album_goes_out_as_one_message_per_chunk_of_max_batch_jobs(make_settings, redis_url, queue_name):
    from web.app import create_app

    settings = make_settings(broker_url=redis_url, queue=queue_name, max_batch=2)
    app = create_app(settings)
    body = post_album(app.test_client(), [(make.jpeg(seed=i), f"{i}.jpg") for i in range(5)]).json
    ids = [job["id"] for job in body["jobs"]]
    messages = queued_messages(settings)
    chunks = [chunk_of(m) for m in messages]
    assert [task for task, _ in chunks] == ["dogbreed.classify_chunk"] * 3
    assert sorted(m["headers"]["id"] for m in messages) == [f"album-{body['id']}-chunk-{n}" for n in (1, 2, 3)]
    assert sorted(len(chunk) for _, chunk in chunks) == [1, 2, 2]
    assert sorted(job_id for _, chunk in chunks for job_id in chunk) == sorted(ids)
    app.extensions["db_engine"].dispose()


def test_get_album_shows_jobs_and_summary_as_they_end(client, app):
    body = post_album(client, [(make.jpeg(seed=i), f"{i}.jpg") for i in range(3)]).json
    for job in body["jobs"]:
        assert client.delete(job["url"]).status_code == 200
    got = client.get(body["url"])
    assert got.status_code == 200 and [j["id"] for j in got.json["jobs"]] == [j["id"] for j in body["jobs"]]
    assert got.json["summary"]["canceled"] == 3 and got.json["summary"]["done"] is True


def test_an_album_lists_what_remains_after_retention_expires_one_of_its_jobs(client, app, settings):
    """`dogbreed gc` deletes old finished jobs; their album still answers, with the rest in order."""
    from shared.storage import FolderImageStore
    from shared.tables import Job
    from web.database import db
    from worker.retention import expire

    with app.app_context():
        album = make_album(db(), ["old.jpg", ("notes.txt", "not_an_image"), "new.jpg"])
        old_id, new_id = album_job_ids(album)
        old = db().get(Job, old_id)
        old.status, old.created_at = "succeeded", ago(days=40)
        db().commit()
        assert expire(db(), FolderImageStore(settings.storage_dir), 30).jobs == 1
    got = client.get(f"/api/v1/batches/{album.id}").json
    assert [job.get("id") or job["filename"] for job in got["jobs"]] == ["notes.txt", new_id]
    assert got["summary"] == {"queued": 1, "running": 0, "succeeded": 0, "failed": 0, "canceled": 0,
                              "rejected": 1, "total": 2, "done": False}


def test_an_album_is_seen_by_its_owner_and_admins_only(make_settings, redis_url, queue_name):
    """Another user's album answers like one that does not exist, so its id is not confirmed."""
    from web.app import create_app

    settings = make_settings(broker_url=redis_url, queue=queue_name, auth_required=True)
    with database(settings.database_url) as s:
        owner = make_user(s)
        album_id = make_album(s, owner_id=owner.id).id
        keys = {"owner": make_key(s, owner), "other": make_key(s), "admin": make_key(s, make_user(s, admin=True))}
    client = create_app(settings).test_client()
    seen = {who: client.get(f"/api/v1/batches/{album_id}", headers={"Authorization": f"Bearer {key}"})
            for who, key in keys.items()}
    assert seen["owner"].status_code == seen["admin"].status_code == 200
    assert seen["owner"].json["summary"]["queued"] == 2
    assert seen["other"].status_code == 404 and seen["other"].json["error"]["code"] == "batch_not_found"


def test_too_many_files_is_400_and_makes_nothing(make_settings, redis_url, queue_name):
    from web.app import create_app

    app = create_app(make_settings(broker_url=redis_url, queue=queue_name, max_files_per_request=2))
    response = post_album(app.test_client(), [(make.jpeg(seed=i), f"{i}.jpg") for i in range(3)])
    assert response.status_code == 400 and response.json["error"]["code"] == "too_many_files"
    assert "at most 2" in response.json["error"]["message"] and job_rows(app) == []


def test_an_album_may_be_bigger_than_one_upload(make_settings, redis_url, queue_name):
    from web.app import create_app

    photos = [make.jpeg(400, 300, seed=i) for i in range(2)]
    limit = max(len(p) for p in photos) + 10  # each fits; together they are far over the one-upload limit
    app = create_app(make_settings(broker_url=redis_url, queue=queue_name, max_upload_bytes=limit))
    response = post_album(app.test_client(), [(p, f"{i}.jpg") for i, p in enumerate(photos)])
    assert response.status_code == 202 and response.json["summary"]["queued"] == 2


def test_unknown_album_is_a_json_404(client):
    response = client.get("/api/v1/batches/nope")
    assert response.status_code == 404 and response.json["error"]["code"] == "batch_not_found"


def test_the_upload_form_takes_several_files_and_shows_the_album(client):
    with client.session_transaction() as session:
        session["csrf"] = "token"
    response = client.post("/", data={"csrf_token": "token", "image": [(io.BytesIO(make.jpeg(seed=i)), f"{i}.jpg")
                                                                       for i in range(2)]},
                           content_type="multipart/form-data")
    assert response.status_code == 303 and "/batches/" in response.headers["Location"]
    page = client.get(response.headers["Location"]).data.decode()
    assert "album.js" in page and 'aria-live="polite"' in page and page.count('"status": "queued"') == 2
    form = client.get("/").data.decode()
    assert "multiple" in form and "upload.js" in form
