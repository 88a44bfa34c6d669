"""Corrections (PUT/DELETE /api/v1/jobs/<id>/label) and GET /api/v1/breeds, on a real database and Redis."""
import io
import json

import pytest

from shared import jobs, model_versions
from shared.breed_names import COMMON_NAMES
from tests.factories import bearer, database
from tests.helpers import images as make


@pytest.fixture
def settings(make_settings, redis_url, queue_name):
    return make_settings(broker_url=redis_url, queue=queue_name, auth_required=True)




def upload(client, key: str, seed: int = 0) -> str:
    response = client.post("/api/v1/jobs", data={"image": (io.BytesIO(make.jpeg(seed=seed)), "x.jpg")},
                           content_type="multipart/form-data", headers=bearer(key))
    assert response.status_code == 202, response.json
    return response.json["id"]


def label(client, key: str, job_id: str, body) -> dict:
    return client.put(f"/api/v1/jobs/{job_id}/label", data=json.dumps(body), content_type="application/json",
                      headers=bearer(key))


def test_the_owner_corrects_a_job_and_sees_the_canonical_breed_back(client, people):
    job_id = upload(client, people["a"])
    assert client.get(f"/api/v1/jobs/{job_id}", headers=bearer(people["a"])).json["label"] is None
    response = label(client, people["a"], job_id, {"breed": "shikoku  INU"})
    assert response.status_code == 200, response.json
    assert response.json["label"]["kind"] == "dog" and response.json["label"]["breed"] == "Shikoku INU"
    assert response.json["label"]["labeled_by"] == "a"
    other = upload(client, people["a"], seed=1)  # a second spelling of the breed labeled first
    assert label(client, people["a"], other, {"breed": "Shikoku"}).json["label"]["breed"] == "Shikoku INU"
    assert label(client, people["a"], other, {"breed": "german-shepherd"}).json["label"]["breed"] == "German shepherd dog"
    shown = client.get(f"/api/v1/jobs/{job_id}", headers=bearer(people["a"])).json["label"]
    assert shown["breed"] == "Shikoku INU" and shown["labeled_at"].endswith("Z")
    person = label(client, people["a"], job_id, {"kind": "human"})
    assert person.json["label"]["kind"] == "human" and person.json["label"]["breed"] is None
    withdrawn = client.delete(f"/api/v1/jobs/{job_id}/label", headers=bearer(people["a"]))
    assert withdrawn.status_code == 200 and withdrawn.json["label"] is None
    assert client.delete(f"/api/v1/jobs/{job_id}/label", headers=bearer(people["a"])).status_code == 200


def test_only_the_owner_or_an_admin_may_label(client, people):
    job_id = upload(client, people["a"])
    for method in (client.put, client.delete):
        response = method(f"/api/v1/jobs/{job_id}/label", json={"kind": "neither"}, headers=bearer(people["b"]))
        assert response.status_code == 404 and response.json["error"]["code"] == "job_not_found"
    assert client.put(f"/api/v1/jobs/{job_id}/label", json={"kind": "neither"}).status_code == 401
    by_admin = label(client, people["root"], job_id, {"kind": "neither"})
    assert by_admin.status_code == 200 and by_admin.json["label"]["labeled_by"] == "root"
    assert label(client, people["a"], "x" * 22, {"kind": "neither"}).status_code == 404


@pytest.mark.parametrize("body, code", [
    ({}, "bad_label"),
    ([], "bad_label"),
    ("Shikoku", "bad_label"),
    ({"breed": 3}, "bad_label"),
    ({"kind": "cat"}, "bad_label"),
    ({"kind": "human", "breed": "Beagle"}, "bad_label"),
    ({"breed": "Beagle", "colour": "tan"}, "bad_label"),
    ({"kind": "dog"}, "bad_breed"),
    ({"breed": "  "}, "bad_breed"),
    ({"breed": "--"}, "bad_breed"),
    ({"breed": "x" * 101}, "bad_breed"),
])
def test_a_bad_label_body_is_a_400_naming_the_fix(client, people, body, code):
    job_id = upload(client, people["a"])
    response = label(client, people["a"], job_id, body)
    assert response.status_code == 400 and response.json["error"]["code"] == code, response.json
    assert client.get(f"/api/v1/jobs/{job_id}", headers=bearer(people["a"])).json["label"] is None


def test_not_json_at_all_is_a_400(client, people):
    job_id = upload(client, people["a"])
    response = client.put(f"/api/v1/jobs/{job_id}/label", data="breed=Beagle", headers=bearer(people["a"]),
                          content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400 and response.json["error"]["code"] == "bad_label"


def test_history_filters_by_labeled_and_lists_each_label(client, people):
    first, second = upload(client, people["a"]), upload(client, people["a"], seed=1)
    label(client, people["a"], first, {"breed": "Beagle"})

    def found(query: str) -> list:
        response = client.get(f"/api/v1/jobs?{query}", headers=bearer(people["a"]))
        assert response.status_code == 200, response.json
        return [(j["id"], j["label"] and j["label"]["breed"]) for j in response.json["jobs"]]

    assert found("labeled=true") == [(first, "Beagle")]
    assert found("labeled=false") == [(second, None)]
    assert found("") == [(second, None), (first, "Beagle")]
    bad = client.get("/api/v1/jobs?labeled=maybe", headers=bearer(people["a"]))
    assert bad.status_code == 400 and bad.json["error"]["code"] == "bad_filter"
    page = client.get("/history?labeled=true", headers=bearer(people["a"])).data.decode()
    assert first in page and second not in page


def test_breeds_without_a_model_version_are_the_118_imagenet_breeds(client, people):
    response = client.get("/api/v1/breeds", headers=bearer(people["a"]))
    assert response.status_code == 200
    assert response.json["model_version"] is None and response.json["head"] == "imagenet-dogs"
    assert [b["name"] for b in response.json["breeds"]] == list(COMMON_NAMES.values())
    assert len(response.json["breeds"]) == 118 and not any("photos" in b for b in response.json["breeds"])
    assert client.get("/api/v1/breeds").status_code == 401


def test_breeds_of_the_active_version_come_from_its_card_or_its_labels(client, people, settings):
    learned = [{"name": "Beagle"}, {"name": "Shikoku", "photos": 3}]
    with database(settings.database_url) as session:
        model_versions.register(session, "learned-1", "tiny", "random", 2, {"backbone": "tiny", "breeds": learned})
        model_versions.register(session, "old-1", "tiny", "random", 2, {"backbone": "tiny"})
        model_versions.activate(session, "learned-1")
    answer = client.get("/api/v1/breeds", headers=bearer(people["a"])).json
    assert answer == {"model_version": "learned-1", "head": "trained:learned-1", "breeds": learned}
    # A version published before cards listed breeds: its folder's labels.json, readable.
    (settings.model_dir / "old-1").mkdir(parents=True)
    (settings.model_dir / "old-1" / "labels.json").write_text(json.dumps(["001.Affenpinscher", "Shiba_inu"]))
    with database(settings.database_url) as session:
        model_versions.activate(session, "old-1")
    answer = client.get("/api/v1/breeds", headers=bearer(people["a"])).json
    assert answer["model_version"] == "old-1" and answer["breeds"] == [{"name": "Affenpinscher"}, {"name": "Shiba inu"}]


def test_the_upload_page_links_to_the_breeds_we_know(client, people):
    from tests.web.test_auth import login

    login(client, "a", "a-password")
    page = client.get("/").data.decode()
    assert 'href="/breeds"' in page
    listing = client.get("/breeds").data.decode()
    assert "Xoloitzcuintli" in listing and "Beagle" in listing


def test_the_job_page_takes_a_correction_with_its_csrf_token(client, people, app):
    from tests.web.test_auth import login

    login(client, "a", "a-password")
    job_id = upload(client, people["a"])
    with app.app_context():
        from web.database import db

        jobs.succeed(db(), job_id, {"kind": "dog", "sentence": "a dog"})
        db().commit()
    page = client.get(f"/jobs/{job_id}").data.decode()
    assert "Not right?" in page and 'list="known-breeds"' in page and "<option value=\"Xoloitzcuintli\">" in page
    csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    refused = client.post(f"/jobs/{job_id}/label", data={"breed": "Shikoku"})
    assert refused.status_code == 400
    done = client.post(f"/jobs/{job_id}/label", data={"breed": "shikoku inu", "csrf_token": csrf})
    assert done.status_code == 303
    assert "Shikoku inu" in client.get(f"/jobs/{job_id}").data.decode()
    client.post(f"/jobs/{job_id}/label", data={"kind": "neither", "csrf_token": csrf})
    assert client.get(f"/api/v1/jobs/{job_id}").json["label"]["kind"] == "neither"
    client.post(f"/jobs/{job_id}/label", data={"withdraw": "1", "csrf_token": csrf})
    assert client.get(f"/api/v1/jobs/{job_id}").json["label"] is None
    bad = client.post(f"/jobs/{job_id}/label", data={"breed": "", "csrf_token": csrf})
    assert bad.status_code == 400 and "breed" in bad.data.decode()
