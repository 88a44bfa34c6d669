"""shared/outbound.py against real local HTTP servers: one parser, the checked address, one deadline, a cap."""
from __future__ import annotations

import pytest

from shared import outbound
from tests.helpers.origin import answer, drip, flood, redirect


@pytest.mark.parametrize("url", [
    "http://evil.com\\@127.0.0.1/",
    "http://evil.com\\.127.0.0.1/hook",
    "http://127.0.0.1\\@evil.com/",
])
def test_a_backslash_in_the_url_is_refused_whatever_else_it_says(url):
    with pytest.raises(outbound.UrlRefused, match="backslash"):
        outbound.check(url, allow_private=True)


@pytest.mark.parametrize("url, said", [
    ("http://user:pw@example.com/hook", "user name or password"),
    ("http://example.com@127.0.0.1/", "user name or password"),
    ("http://exa\tmple.com/", "whitespace or control"),
    ("http://example.com/\nHost: x", "whitespace or control"),
    ("http://example.com:99999/", "port"),
    ("gopher://example.com/", "http:// or https://"),
    ("http:///nohost", "http:// or https://"),
])
def test_urls_parsers_disagree_on_are_refused(url, said):
    with pytest.raises(outbound.UrlRefused, match=said):
        outbound.parse(url)


def test_private_addresses_are_refused_unless_allowed(origin):
    with pytest.raises(outbound.UrlRefused, match="loopback, private or link-local.*DOGBREED_X=1"):
        outbound.check(origin.url("/"), allow_private=False, setting="DOGBREED_X")
    assert outbound.check(origin.url("/"), allow_private=True).addresses == ("127.0.0.1",)


def test_send_connects_to_the_checked_address_with_the_name_as_host(origin):
    """The name never resolves here (.invalid): the connection can only go to the checked address,
    and the Host header still says the name."""
    origin.routes["/hook"] = answer(204)
    target = outbound.Target(f"http://dogbreed.invalid:{origin.port}/hook?x=1", "http", "dogbreed.invalid",
                             origin.port, "/hook?x=1", ("127.0.0.1",))
    got = outbound.send(target, "POST", b"{}", {"Content-Type": "application/json"})
    assert got.status == 204 and got.complete
    assert [(s.method, s.path, s.host) for s in origin.seen] == [("POST", "/hook?x=1", f"dogbreed.invalid:{origin.port}")]


def test_a_dripped_answer_is_cut_at_the_total_deadline(origin):
    """Each byte comes well within the deadline; the whole answer would take 6 s. A timeout per read
    would wait for it all and answer 200; the attempt's one deadline (1 s) cuts it."""
    origin.routes["/slow"] = drip(b"x" * 30, every_s=0.2)
    target = outbound.check(origin.url("/slow"), allow_private=True)
    with pytest.raises(outbound.FetchFailed) as failed:
        outbound.send(target, timeout_s=1)
    assert failed.value.kind == "timeout" and "within 1 s" in str(failed.value)


@pytest.mark.parametrize("say_length", [True, False])
def test_a_huge_answer_is_cut_at_the_cap(origin, say_length):
    origin.routes["/big"] = flood(200 * 1024 * 1024, say_length)
    got = outbound.send(outbound.check(origin.url("/big"), allow_private=True), max_bytes=100_000)
    assert got.status == 200 and not got.complete and len(got.body) <= 100_000
    if not say_length:
        assert len(got.body) == 100_000


def test_redirects_are_not_followed_unless_allowed_and_each_is_checked_again(origin):
    origin.routes["/moved"] = redirect("/here")
    origin.routes["/here"] = answer(200, b"arrived")
    target = outbound.check(origin.url("/moved"), allow_private=True)
    assert outbound.send(target).status == 302  # webhooks: a 3xx is an answer, never followed
    assert outbound.send(target, redirects=3, allow_private=True).body == b"arrived"
    with pytest.raises(outbound.FetchFailed) as failed:  # the redirect's address is checked like the first
        outbound.send(target, redirects=3, allow_private=False, what="image_url")
    assert failed.value.kind == "redirects" and "loopback, private or link-local" in str(failed.value)


def test_a_redirect_loop_ends(origin):
    origin.routes["/loop"] = redirect("/loop")
    with pytest.raises(outbound.FetchFailed, match="more than 2 redirects"):
        outbound.send(outbound.check(origin.url("/loop"), allow_private=True), redirects=2, allow_private=True)


def test_a_closed_port_is_unreachable(origin):
    port = origin.port
    origin.stop()
    with pytest.raises(outbound.FetchFailed) as failed:
        outbound.send(outbound.check(f"http://127.0.0.1:{port}/", allow_private=True), timeout_s=2)
    assert failed.value.kind == "unreachable"
    origin.start()  # the fixture stops it again


def _certificate(tmp_path, name: str):
    """A CA and a server certificate for `name`, made with `cryptography` (moto's dependency)."""
    pytest.importorskip("cryptography")
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_tls_goes_to_the_checked_address_with_sni_and_the_certificate_checked_for_the_name(origin, tmp_path):
    import ssl

    cert, key = _certificate(tmp_path, "hooks.dogbreed.invalid")
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    names: list[str | None] = []
    server_context.sni_callback = lambda sock, name, ctx: names.append(name)
    origin.routes["/hook"] = answer(204)
    origin.server.socket = server_context.wrap_socket(origin.server.socket, server_side=True)
    trusting = ssl.create_default_context(cafile=str(cert))
    target = outbound.Target(f"https://hooks.dogbreed.invalid:{origin.port}/hook", "https", "hooks.dogbreed.invalid",
                             origin.port, "/hook", ("127.0.0.1",))
    assert outbound.send(target, "POST", b"{}", context=trusting).status == 204
    assert names == ["hooks.dogbreed.invalid"] and origin.seen[-1].host == f"hooks.dogbreed.invalid:{origin.port}"
    wrong = outbound.Target(target.url.replace("hooks.", "other."), "https", "other.dogbreed.invalid",
                            origin.port, "/hook", ("127.0.0.1",))
    with pytest.raises(outbound.FetchFailed) as failed:  # the certificate is checked against the name
        outbound.send(wrong, context=trusting)
    assert "CERTIFICATE_VERIFY_FAILED" in str(failed.value) or "certificate" in str(failed.value).lower()
