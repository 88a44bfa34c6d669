"""callback_url at submit: refused (400) unless http(s) to a public address, or private ones are allowed."""
import base64
import hashlib
import hmac
import io
import time

import pytest

from shared.webhooks import sign
from tests.helpers import images as make
from tests.web.test_api import job_rows


def submit(client, callback_url: str):
    return client.post("/api/v1/jobs", data={"image": (io.BytesIO(make.jpeg()), "a.jpg"), "callback_url": callback_url},
                       content_type="multipart/form-data")


@pytest.fixture
def hooked(make_settings, redis_url, queue_name):
    from web.app import create_app

    def make(**overrides):
        settings = make_settings(broker_url=redis_url, queue=queue_name, webhook_secret="s", **overrides)
        return create_app(settings)

    return make


@pytest.mark.parametrize("url, said", [
    ("http://127.0.0.1:9/hook", "loopback, private or link-local"),
    ("http://localhost/hook", "loopback, private or link-local"),
    ("http://10.1.2.3/hook", "loopback, private or link-local"),
    ("http://192.168.0.5/hook", "loopback, private or link-local"),
    ("http://169.254.169.254/latest/meta-data", "loopback, private or link-local"),
    ("http://[::1]/hook", "loopback, private or link-local"),
    ("ftp://example.com/hook", "http:// or https://"),
    ("http://example.com\\@127.0.0.1:9/hook", "backslash"),  # a public host to urlsplit, loopback to urllib3
    ("http://example.com@127.0.0.1:9/hook", "user name or password"),
    ("/relative/hook", "http:// or https://"),
])
def test_private_and_odd_callback_urls_are_400(hooked, url, said):
    app = hooked()
    response = submit(app.test_client(), url)
    assert response.status_code == 400 and response.json["error"]["code"] == "bad_callback_url"
    assert said in response.json["error"]["message"] and job_rows(app) == []


def test_private_urls_pass_when_the_operator_allows_them(hooked):
    response = submit(hooked(webhook_allow_private=True).test_client(), "http://127.0.0.1:9/hook")
    assert response.status_code == 202 and response.json["webhook"] == {
        "url": "http://127.0.0.1:9/hook", "status": "pending", "attempts": 0, "last_error": None}


def test_without_a_secret_the_server_says_it_sends_no_webhooks(client):
    response = submit(client, "https://example.com/hook")
    assert response.status_code == 400 and response.json["error"]["code"] == "webhooks_unavailable"
    assert "DOGBREED_WEBHOOK_SECRET" in response.json["error"]["message"]


def test_the_signature_is_the_hex_hmac_sha256_of_the_raw_body():
    body = b'{"id": "x"}'
    assert sign(body, "k") == "sha256=" + hmac.new(b"k", body, hashlib.sha256).hexdigest()


def test_standard_webhooks_headers_verify_with_the_package_and_not_once_replayed_late():
    from standardwebhooks import Webhook
    from standardwebhooks.webhooks import WebhookVerificationError

    from shared.webhooks import standard_headers

    body = b'{"id": "x"}'
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    headers = standard_headers("msg_job_x_completed", body, secret)
    assert Webhook(secret).verify(body, headers) == {"id": "x"}
    with pytest.raises(WebhookVerificationError):  # another body under the same headers
        Webhook(secret).verify(b'{"id": "y"}', headers)
    with pytest.raises(WebhookVerificationError):  # a recorded delivery replayed an hour later
        Webhook(secret).verify(body, standard_headers("msg_job_x_completed", body, secret, now=time.time() - 3600))
    with pytest.raises(WebhookVerificationError):  # another secret
        Webhook("whsec_" + base64.b64encode(b"j" * 32).decode()).verify(body, headers)
    plain = "an-older-deployments-hex-secret"  # signs with its own bytes
    assert Webhook(plain.encode()).verify(body, standard_headers("m", body, plain)) == {"id": "x"}


def test_up_generates_a_whsec_webhook_secret(tmp_path):
    from standardwebhooks import Webhook

    from cli.private_files import secret_key

    secret = secret_key(tmp_path, "webhook-secret", webhook=True)
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    Webhook(secret)  # the package takes it as is
