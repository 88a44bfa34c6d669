"""Issue 18 item 5 (first part): CSRF and auth are checked before a multipart body is read, so an
anonymous or cross-site POST of a huge album costs nothing to refuse."""
import io
import re

import pytest

from tests.factories import database, make_user

BODY = 600 * 1024 * 1024  # what the client claims to send: within the album limit (32 x 20 MiB)


class Body(io.RawIOBase):
    """A multipart body of BODY bytes made on demand, counting what the server reads of it."""

    def __init__(self) -> None:
        self.pos = self.read_bytes = 0
        self.head = b'--x\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\n'

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:  # the test client measures the stream
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = (0, self.pos, BODY)[whence] + offset
        return self.pos

    def readinto(self, buffer) -> int:
        n = max(0, min(len(buffer), BODY - self.pos))
        chunk = (self.head[self.pos:] + b"\0" * n)[:n]
        buffer[:n] = chunk
        self.pos += n
        self.read_bytes += n
        return n


def post_huge(client, path: str, **headers):
    body = Body()
    response = client.post(path, input_stream=body, content_length=BODY,
                           content_type="multipart/form-data; boundary=x", headers=headers)
    return response, body.read_bytes


@pytest.fixture
def settings(make_settings, redis_url, queue_name):
    return make_settings(broker_url=redis_url, queue=queue_name, auth_required=True)


def test_an_anonymous_huge_post_is_refused_unread(client):
    for path in ("/", "/api/v1/batches"):
        response, read = post_huge(client, path)
        assert response.status_code in (302, 401), path
        assert read < 1024 * 1024, (path, read)


def test_a_cross_site_huge_post_is_refused_unread(client, settings):
    with database(settings.database_url) as session:
        make_user(session, "a", password="a-password")
    page = client.get("/login").data.decode()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert client.post("/login", data={"name": "a", "password": "a-password", "csrf_token": csrf}).status_code == 302
    response, read = post_huge(client, "/", Origin="https://evil.example")
    assert response.status_code == 400 and b"another site" in response.data and read < 1024 * 1024


def test_with_accounts_off_a_form_post_from_a_session_without_a_token_is_refused_unread(make_settings, redis_url,
                                                                                       queue_name):
    from web.app import create_app

    stranger = create_app(make_settings(broker_url=redis_url, queue=queue_name)).test_client()  # never shown a form
    response, read = post_huge(stranger, "/")
    assert response.status_code == 400 and b"reload the page" in response.data and read < 1024 * 1024


@pytest.mark.slow
def test_real_gunicorn_answers_an_anonymous_huge_album_before_its_body_is_sent(settings, tmp_path):
    """The client sends the headers of a 600 MiB album and 64 KiB of it, then waits: the answer comes
    without the rest (were the body read first, the server would wait for it as long as the client)."""
    import socket
    from urllib.parse import urlsplit

    from tests.helpers.live import GunicornWeb

    web = GunicornWeb(settings, tmp_path)
    try:
        where = urlsplit(web.url)
        for path in ("/", "/api/v1/batches"):
            with socket.create_connection((where.hostname, where.port), timeout=60) as conn:
                conn.sendall(f"POST {path} HTTP/1.1\r\nHost: {where.netloc}\r\nContent-Length: {BODY}\r\n"
                             "Content-Type: multipart/form-data; boundary=x\r\n\r\n".encode() + Body().read(64 * 1024))
                status_line = conn.makefile("rb").readline().decode()
            assert status_line.split()[1] in ("302", "401"), (path, status_line)
    finally:
        web.stop()
