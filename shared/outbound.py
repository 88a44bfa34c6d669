"""Outbound HTTP to URLs that callers give us (webhooks' callback_url, a job's image_url), made safe.

Why not `requests`: a URL checked by one parser and fetched by another can name two different hosts
(`http://evil.com\\@127.0.0.1/` is evil.com to urlsplit and 127.0.0.1 to urllib3), and a name resolved
for the check and again to connect can answer differently the second time (DNS rebinding). So here one
parser (`parse`) serves check and send, `check` resolves once and keeps the addresses it checked, and
`send` connects to exactly those, with the Host header and TLS SNI (and certificate check) set to the
name. An attempt has one deadline for everything (connect, TLS, headers, body; a receiver that drips
its answer is cut there, not given the timeout once per read), the answer is read streamed and capped
in bytes, and a redirect, when the caller allows any, goes through `check` again.
"""
from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Mapping
from urllib.parse import urljoin, urlsplit

MAX_URL_LENGTH = 2000
REDIRECTS = (301, 302, 303, 307, 308)
CHUNK = 64 * 1024


class UrlRefused(ValueError):
    """The URL is malformed, not http(s), or names an address we do not call; the message says which."""


class FetchFailed(Exception):
    """The URL was fine but the attempt failed; `kind` is timeout, unreachable, too_large, bad_answer or redirects."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Target:
    """A checked URL: the name to send as Host and SNI, and the addresses it resolved to when checked."""

    url: str
    scheme: str
    host: str
    port: int
    path: str  # the request target: path and query
    addresses: tuple[str, ...] = ()


@dataclass
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes
    complete: bool  # False: the body was longer than the cap (or said so) and was cut
    url: str  # where it came from, after any redirects


def refused_address(address: str) -> bool:
    """Loopback, private, link-local, reserved, multicast: anything but a global unicast address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return (ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_reserved or ip.is_multicast
            or ip.is_unspecified or not ip.is_global)


def parse(url: str, what: str = "the URL") -> Target:
    """The one parser for check and send. Refuses what parsers disagree on: a backslash, whitespace or
    control characters anywhere (urlsplit silently drops tabs and newlines), and user info in the authority."""
    if len(url) > MAX_URL_LENGTH:
        raise UrlRefused(f"{what} is longer than {MAX_URL_LENGTH} characters.")
    if "\\" in url:
        raise UrlRefused(f"{what} contains a backslash; write the URL with '/' only (encode a literal one as %5C).")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise UrlRefused(f"{what} contains whitespace or control characters; encode them (e.g. %20).")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UrlRefused(f"{what} must be an absolute http:// or https:// URL, e.g. https://example.com/hook.")
    if "@" in parts.netloc:
        raise UrlRefused(f"{what} carries a user name or password before '@'; credentials in URLs are not sent.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UrlRefused(f"{what} has a port that is not a number from 1 to 65535.") from None
    host = parts.hostname or ""
    if not host or not port:
        raise UrlRefused(f"{what} must be an absolute http:// or https:// URL, e.g. https://example.com/hook.")
    try:
        host.encode("idna")
    except UnicodeError:
        raise UrlRefused(f"{what}'s host {host!r} is not a valid host name.") from None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(url=url, scheme=parts.scheme, host=host, port=port, path=path)


def check(url: str, allow_private: bool, what: str = "the URL", setting: str = "") -> Target:
    """The parsed URL with the addresses its host resolves to now; refused when any is private (unless allowed).
    `send` connects to those addresses only, so the name is never resolved a second time."""
    target = parse(url, what)
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise UrlRefused(f"{what}'s host {target.host!r} does not resolve ({exc}).") from None
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    if not allow_private:
        for address in addresses:
            if refused_address(address):
                allow = f" (an operator may set {setting}=1)" if setting else ""
                raise UrlRefused(f"{what}'s host {target.host!r} resolves to {address}, a loopback, private or "
                                 f"link-local address; use a public URL{allow}.")
    return Target(target.url, target.scheme, target.host, target.port, target.path, addresses)


def _connection(target: Target, timeout: float, context: ssl.SSLContext | None) -> http.client.HTTPConnection:
    """A connection whose Host (and SNI) is the name, but whose socket goes to a checked address."""
    conn: http.client.HTTPConnection
    if target.scheme == "https":
        conn = http.client.HTTPSConnection(target.host, target.port, timeout=timeout,
                                           context=context or ssl.create_default_context())
    else:
        conn = http.client.HTTPConnection(target.host, target.port, timeout=timeout)

    def connect_checked(_address: tuple[str, int], timeout: float, source: object = None) -> socket.socket:
        error: OSError | None = None
        for address in target.addresses:
            try:
                return socket.create_connection((address, target.port), timeout)
            except OSError as exc:
                error = exc
        raise error or OSError(f"{target.host} resolved to no address")

    conn._create_connection = connect_checked  # type: ignore[attr-defined]  # http.client's hook for the socket
    return conn


def _attempt(target: Target, method: str, body: bytes | None, headers: Mapping[str, str], deadline: float,
             max_bytes: int, context: ssl.SSLContext | None, timeout_s: float) -> Answer:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise FetchFailed("timeout", f"no answer within {timeout_s:g} s")
    conn = _connection(target, remaining, context)
    fired = threading.Event()

    def cut() -> None:  # the deadline: whatever the socket is doing, it ends now
        fired.set()
        sock = conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    timer = threading.Timer(remaining, cut)
    timer.daemon = True
    timer.start()
    try:
        conn.request(method, target.path, body=body, headers={"Accept-Encoding": "identity", **headers})
        response = conn.getresponse()
        length = response.getheader("Content-Length")
        # Said too large: only a first chunk is read, for the caller to quote.
        said_too_large = bool(length and length.isdigit() and int(length) > max_bytes)
        limit = min(max_bytes, CHUNK) if said_too_large else max_bytes
        chunks: list[bytes] = []
        got = 0
        while got <= limit:
            chunk = response.read(min(CHUNK, limit + 1 - got))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        complete = got <= limit and not said_too_large
        data = b"".join(chunks)[:limit]
        answer = Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, data, complete, target.url)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if fired.is_set():
            raise FetchFailed("timeout", f"no whole answer within {timeout_s:g} s") from None
        if isinstance(exc, (socket.timeout, TimeoutError)):
            raise FetchFailed("timeout", f"no answer within {timeout_s:g} s") from None
        kind = "unreachable" if isinstance(exc, OSError) else "bad_answer"
        raise FetchFailed(kind, f"{type(exc).__name__}: {exc}"[:300]) from None
    finally:
        timer.cancel()
        conn.close()
    if fired.is_set():  # cut mid-body: what was read is not the whole answer
        raise FetchFailed("timeout", f"no whole answer within {timeout_s:g} s")
    return answer


def send(target: Target, method: str = "GET", body: bytes | None = None, headers: Mapping[str, str] | None = None,
         timeout_s: float = 10, max_bytes: int = CHUNK, redirects: int = 0, allow_private: bool = False,
         context: ssl.SSLContext | None = None, what: str = "the URL", setting: str = "") -> Answer:
    """One attempt at a checked target, all of it (redirects included) within `timeout_s`. The answer's
    body holds at most `max_bytes`. A redirect is followed only when `redirects` allows, as a GET, and
    only after `check` accepts its Location; with none allowed a 3xx is returned as it is."""
    deadline = time.monotonic() + timeout_s
    for _ in range(redirects + 1):
        answer = _attempt(target, method, body, headers or {}, deadline, max_bytes, context, timeout_s)
        location = answer.headers.get("location")
        if answer.status not in REDIRECTS or not location or redirects == 0:
            return answer
        try:
            target = check(urljoin(target.url, location), allow_private, f"{what}'s redirect", setting)
        except UrlRefused as exc:
            raise FetchFailed("redirects", str(exc)) from None
        method, body = "GET", None
    raise FetchFailed("redirects", f"more than {redirects} redirects")
