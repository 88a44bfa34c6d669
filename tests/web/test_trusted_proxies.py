"""Issue 18 item 12: with DOGBREED_PROXY_HOPS=1, X-Forwarded-For is believed only from a trusted proxy's
address (DOGBREED_TRUSTED_PROXIES, loopback by default); a client reaching gunicorn directly cannot spoof it."""
import re

import pytest

from shared.settings import Settings, SettingsError
from tests.factories import database, make_user

DIRECT = {"REMOTE_ADDR": "203.0.113.5"}  # a client that reached gunicorn without the proxy


@pytest.fixture
def settings(make_settings, redis_url, queue_name):
    return make_settings(broker_url=redis_url, queue=queue_name, proxy_hops=1)


def test_metrics_do_not_believe_a_direct_clients_forwarded_for(client):
    spoofed = client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"}, environ_base=DIRECT)
    assert spoofed.status_code == 403 and spoofed.json["error"]["code"] == "metrics_forbidden"
    # Through the proxy on loopback, its header names the client: a remote one is refused, a local one answered.
    assert client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.5"}).status_code == 403
    assert client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 200


def test_the_per_address_login_limit_cannot_be_dodged_with_forwarded_for(make_settings, redis_url, queue_name):
    from web.app import create_app

    settings = make_settings(broker_url=redis_url, queue=queue_name, proxy_hops=1, auth_required=True,
                             login_failures=1)  # three failures per address
    with database(settings.database_url) as session:
        for n in range(4):
            make_user(session, f"u{n}", password="right-password")
    client = create_app(settings).test_client()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").data.decode()).group(1)
    statuses = [client.post("/login", data={"name": f"u{n}", "password": "wrong", "csrf_token": csrf},
                            headers={"X-Forwarded-For": f"198.51.100.{n}"}, environ_base=DIRECT).status_code
                for n in range(4)]
    assert statuses == [401, 401, 401, 429]


def test_other_proxy_addresses_can_be_trusted(make_settings, redis_url, queue_name):
    from web.app import create_app

    client = create_app(make_settings(broker_url=redis_url, queue=queue_name, proxy_hops=1,
                                      trusted_proxies="10.0.0.0/8")).test_client()
    proxy = {"REMOTE_ADDR": "10.1.2.3"}
    assert client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"}, environ_base=proxy).status_code == 200
    assert client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"}, environ_base=DIRECT).status_code == 403


def test_a_bad_trusted_proxies_value_names_the_setting():
    with pytest.raises(SettingsError, match="DOGBREED_TRUSTED_PROXIES"):
        Settings.from_env({"DOGBREED_TRUSTED_PROXIES": "127.0.0.1,not-an-address"})
    assert Settings.from_env({"DOGBREED_TRUSTED_PROXIES": "10.0.0.0/8, ::1"}).trusted_proxies == "10.0.0.0/8, ::1"


def _own_address() -> str | None:
    """One of this machine's non-loopback addresses (the route out), or None."""
    import socket

    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing address
            address = probe.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith("127.") else address


@pytest.mark.slow
def test_a_client_reaching_real_gunicorn_directly_cannot_spoof_forwarded_for(settings, tmp_path):
    import requests

    from tests.helpers.live import GunicornWeb

    address = _own_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address to reach gunicorn from")
    web = GunicornWeb(settings.with_(host="0.0.0.0", auth_required=True), tmp_path)
    try:
        spoof = {"X-Forwarded-For": "127.0.0.1"}
        direct = requests.get(web.url.replace("127.0.0.1", address) + "/metrics", headers=spoof, timeout=5)
        assert direct.status_code == 403 and direct.json()["error"]["code"] == "metrics_forbidden"
        assert requests.get(f"{web.url}/metrics", headers=spoof, timeout=5).status_code == 200  # the proxy's word
        proxied = requests.get(f"{web.url}/metrics", headers={"X-Forwarded-For": "203.0.113.5"}, timeout=5)
        assert proxied.status_code == 403
    finally:
        web.stop()
