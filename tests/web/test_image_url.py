"""Images by URL (JSON body or form field) and inline (base64 data URI) on POST /api/v1/jobs, fetched
from a real local HTTP server. Its address is loopback, so most tests allow private addresses as an
operator would (DOGBREED_IMAGE_URL_ALLOW_PRIVATE); one checks the default refuses it."""
from __future__ import annotations

import base64

import pytest

from tests.helpers import images as make
from tests.helpers.origin import answer, drip, flood, redirect
from tests.web.test_api import job_rows, stored_files


@pytest.fixture
def fetching(make_settings, redis_url, queue_name):
    from web.app import create_app

    made = []

    def make_app(**overrides):
        settings = make_settings(broker_url=redis_url, queue=queue_name, **{"image_url_allow_private": True, **overrides})
        made.append(create_app(settings))
        return made[-1]

    yield make_app
    for app in made:
        app.extensions["db_engine"].dispose()


def test_a_json_image_url_is_fetched_checked_and_stored(fetching, origin):
    origin.routes["/pics/rex.png"] = answer(200, make.png(120, 80), "image/png")
    app = fetching()
    response = app.test_client().post("/api/v1/jobs", json={"image_url": origin.url("/pics/rex.png")})
    assert response.status_code == 202, response.json
    assert response.json["image"] | {"sha256": None} == {"filename": "rex.png", "sha256": None, "bytes": len(make.png(120, 80)),
                                                         "format": "PNG", "width": 120, "height": 80}
    [row] = job_rows(app)
    assert row.id == response.json["id"]
    assert len(stored_files(app.config["SETTINGS"])) >= 1
    assert [(seen.method, seen.path) for seen in origin.seen] == [("GET", "/pics/rex.png")]


def test_an_image_url_form_field_works_like_a_file(fetching, origin):
    origin.routes["/a.jpg"] = redirect("/b.jpg")  # redirects are followed, each checked again
    origin.routes["/b.jpg"] = answer(200, make.jpeg(), "image/jpeg")
    response = fetching().test_client().post("/api/v1/jobs", data={"image_url": origin.url("/a.jpg")},
                                             content_type="multipart/form-data")
    assert response.status_code == 202, response.json
    assert response.json["image"]["format"] == "JPEG" and response.json["image"]["filename"] == "b.jpg"


def test_an_inline_data_uri_is_decoded_and_checked(fetching):
    client = fetching().test_client()
    uri = "data:image/jpeg;base64," + base64.b64encode(make.png()).decode()  # the bytes decide, not the URI's type
    response = client.post("/api/v1/jobs", json={"image_base64": uri})
    assert response.status_code == 202 and response.json["image"]["format"] == "PNG"
    bare = client.post("/api/v1/jobs", json={"image_base64": base64.b64encode(make.jpeg()).decode()})
    assert bare.status_code == 202 and bare.json["image"]["format"] == "JPEG"


@pytest.mark.parametrize("body, code, status", [
    ({"image_base64": "data:image/jpeg;base64,not base64!!"}, "bad_image_base64", 400),
    ({"image_base64": "data:image/jpeg,rawbytes"}, "bad_image_base64", 400),
    ({"image_base64": base64.b64encode(b"<svg xmlns='http://www.w3.org/2000/svg'/>").decode()}, "not_an_image", 415),
    ({"image_base64": base64.b64encode(make.truncated(make.jpeg(200, 200))).decode()}, "corrupt_image", 400),
    ({"image_url": "ftp://example.com/dog.jpg"}, "bad_image_url", 400),
    ({"image_url": "http://evil.com\\@127.0.0.1/dog.jpg"}, "bad_image_url", 400),
    ({"image_url": 7}, "bad_image_url", 400),
    ({"image_url": "https://example.com/a.jpg", "image_base64": "AAAA"}, "too_many_files", 400),
    ({}, "missing_image", 400),
    ({"image": "x"}, "bad_request", 400),
])
def test_bad_json_submits_say_what_is_wrong(fetching, body, code, status):
    app = fetching()
    response = app.test_client().post("/api/v1/jobs", json=body)
    assert (response.status_code, response.json["error"]["code"]) == (status, code), response.json
    assert job_rows(app) == []


def test_an_inline_image_over_the_upload_limit_is_413(fetching):
    response = fetching(max_upload_bytes=2000).test_client().post(
        "/api/v1/jobs", json={"image_base64": base64.b64encode(make.jpeg(400, 400)).decode()})
    assert response.status_code == 413 and response.json["error"]["code"] == "file_too_large"


def test_private_addresses_are_refused_by_default(fetching, origin):
    origin.routes["/dog.jpg"] = answer(200, make.jpeg(), "image/jpeg")
    app = fetching(image_url_allow_private=False)
    response = app.test_client().post("/api/v1/jobs", json={"image_url": origin.url("/dog.jpg")})
    assert response.status_code == 400 and response.json["error"]["code"] == "bad_image_url"
    assert "DOGBREED_IMAGE_URL_ALLOW_PRIVATE" in response.json["error"]["message"]
    assert origin.seen == [] and job_rows(app) == []


@pytest.mark.parametrize("route, said", [
    (answer(404, b"gone"), "HTTP 404"),
    (answer(200, b"<html>hello</html>", "text/html"), "not an image"),
    (answer(200, b"", "image/jpeg"), "not an image"),
    (flood(50 * 1024 * 1024, say_length=False), "too large"),
    (flood(50 * 1024 * 1024, say_length=True), "too large"),
    (drip(b"x" * 40, every_s=0.1), "timed out"),
])
def test_a_fetch_that_fails_is_422_with_the_reason(fetching, origin, route, said):
    origin.routes["/img"] = route
    app = fetching(max_upload_bytes=1024 * 1024, image_url_timeout_s=1)
    response = app.test_client().post("/api/v1/jobs", json={"image_url": origin.url("/img")})
    assert response.status_code == 422 and response.json["error"]["code"] == "image_url_failed", response.json
    assert said in response.json["error"]["message"] and job_rows(app) == []


def test_a_fetched_image_meets_every_upload_check(fetching, origin):
    origin.routes["/tiny.png"] = answer(200, make.png(4, 4), "image/png")
    response = fetching().test_client().post("/api/v1/jobs", json={"image_url": origin.url("/tiny.png")})
    assert response.status_code == 400 and response.json["error"]["code"] == "image_too_small"


def test_a_file_and_an_image_url_together_are_refused(fetching, origin):
    import io

    response = fetching().test_client().post(
        "/api/v1/jobs", data={"image": (io.BytesIO(make.jpeg()), "a.jpg"), "image_url": origin.url("/a.jpg")},
        content_type="multipart/form-data")
    assert response.status_code == 400 and response.json["error"]["code"] == "too_many_files"
