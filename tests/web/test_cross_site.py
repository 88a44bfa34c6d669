"""Issue 18 item 14: with accounts off (DOGBREED_AUTH=0) the API takes `curl -F` without a key, but
another site's form cannot post to it."""
import io

import pytest

from tests.helpers import images as make


def post(client, headers: dict):
    return client.post("/api/v1/jobs", data={"image": (io.BytesIO(make.jpeg()), "x.jpg")},
                       content_type="multipart/form-data", headers=headers)


@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    {"Origin": "https://evil.example"},  # an older browser: no Sec-Fetch-Site
    {"Sec-Fetch-Site": "cross-site"},
    {"Origin": "http://localhost:9999", "Sec-Fetch-Site": "same-site"},  # another port of this machine
    {"Origin": "null"},  # a sandboxed frame
])
def test_a_cross_site_form_post_is_refused_with_accounts_off(client, app, headers):
    assert not app.config["SETTINGS"].auth_required
    response = post(client, headers)
    assert response.status_code == 400 and response.json["error"]["code"] == "csrf_failed"
    assert client.get("/api/v1/jobs").json["total"] == 0


@pytest.mark.parametrize("headers", [
    {},  # curl -F, a script
    {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"},  # this site's own page
    {"Sec-Fetch-Site": "none"},  # typed by the user
])
def test_curl_and_this_sites_own_pages_still_submit(client, headers):
    assert post(client, headers).status_code == 202
