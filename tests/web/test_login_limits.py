"""Issue 18's login and session defects, through the real Flask app: the limiter counts before it
checks (16), a name cannot be locked out from elsewhere (13), a logged-out cookie is dead (17)."""
import concurrent.futures as cf
import re

import pytest

from tests.factories import database, make_user


@pytest.fixture
def settings(make_settings, redis_url, queue_name):
    return make_settings(broker_url=redis_url, queue=queue_name, auth_required=True, login_failures=10)


@pytest.fixture
def user(settings):
    with database(settings.database_url) as session:
        make_user(session, "a", password="a-password")
    return "a"


def csrf_of(client) -> str:
    page = client.get("/login").data.decode()
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def post_login(client, csrf: str, name: str, password: str):
    return client.post("/login", data={"name": name, "password": password, "csrf_token": csrf})


def test_concurrent_guesses_are_counted_before_they_are_checked(client, user):
    """17 guesses at once against a limit of 10: exactly 10 passwords are checked, 7 wait."""
    csrf = csrf_of(client)
    with cf.ThreadPoolExecutor(17) as pool:
        statuses = list(pool.map(lambda i: post_login(client, csrf, user, f"guess{i}").status_code, range(17)))
    assert sorted(statuses) == [401] * 10 + [429] * 7, statuses
    assert post_login(client, csrf, user, "a-password").status_code == 429


def test_a_right_password_does_not_count_as_a_failure(client, user):
    csrf = csrf_of(client)
    for _ in range(12):
        assert post_login(client, csrf, user, "a-password").status_code == 302
        csrf = csrf_of(client)  # a login starts a new session, with a new token


def test_wrong_passwords_from_elsewhere_do_not_lock_the_user_out(client, user):
    csrf = csrf_of(client)
    guesser, owner = {"REMOTE_ADDR": "203.0.113.9"}, {"REMOTE_ADDR": "198.51.100.7"}
    for i in range(10):
        assert client.post("/login", data={"name": user, "password": f"guess{i}", "csrf_token": csrf},
                           environ_base=guesser).status_code == 401
    assert client.post("/login", data={"name": user, "password": "guess", "csrf_token": csrf},
                       environ_base=guesser).status_code == 429  # the guesser's own (name, address) is locked
    assert client.post("/login", data={"name": user, "password": "a-password", "csrf_token": csrf},
                       environ_base=owner).status_code == 302


def test_a_crowd_of_addresses_guessing_one_name_meets_the_names_own_limit(make_settings, redis_url, queue_name):
    """With DOGBREED_LOGIN_FAILURES=2: two tries from each of ten addresses spend the name's twenty."""
    from web.app import create_app

    settings = make_settings(broker_url=redis_url, queue=queue_name, auth_required=True, login_failures=2)
    with database(settings.database_url) as session:
        make_user(session, "a", password="a-password")
    client = create_app(settings).test_client()
    csrf = csrf_of(client)

    def guess(address: str) -> int:
        return client.post("/login", data={"name": "a", "password": "nope", "csrf_token": csrf},
                           environ_base={"REMOTE_ADDR": address}).status_code

    assert [guess(f"203.0.113.{n}") for n in range(10) for _ in range(2)] == [401] * 20
    assert guess("198.51.100.1") == 429


def test_a_copied_session_cookie_dies_at_logout(app, client, user):
    assert post_login(client, csrf_of(client), user, "a-password").status_code == 302
    copied = client.get_cookie("session").value
    thief = app.test_client()
    thief.set_cookie("session", copied)
    assert thief.get("/history").status_code == 200
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").data.decode()).group(1)
    assert client.post("/logout", data={"csrf_token": csrf}).status_code == 302
    assert client.get("/history").status_code == 302
    later = thief.get("/history")
    assert later.status_code == 302 and "/login" in later.headers["Location"]
    assert post_login(client, csrf_of(client), user, "a-password").status_code == 302  # a new login works
    assert client.get("/history").status_code == 200
