"""Find or make a Redis for `dogbreed up`: configured, local, started from PATH, or embedded."""
from __future__ import annotations

import logging
import secrets
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from cli.lifeline import die_with_parent

log = logging.getLogger("dogbreed.broker")


@dataclass
class Broker:
    url: str
    kind: str  # configured | local-redis | started-redis | embedded
    process: subprocess.Popen | None = None
    server: object | None = None

    def describe(self) -> str:
        """One line for `up`'s banner; a password in the URL is never printed."""
        url = redacted(self.url)
        return {
            "configured": f"{url} (from DOGBREED_BROKER_URL)",
            "local-redis": f"{url} (the Redis already answering on 127.0.0.1:6379)",
            "started-redis": f"{url} (a redis-server started from PATH for this run, with a password generated "
                             "for it; its children get it in DOGBREED_BROKER_URL)",
            "embedded": f"{url} (embedded fakeredis: for trying out only, about 1/25 of a real Redis's "
                        "task rate; install redis-server for real use)",
        }[self.kind]

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def redacted(url: str) -> str:
    """The URL with its password, if any, shown as ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = f"{parts.username}:***" if parts.username else ":***"
    host = parts.hostname or ""
    netloc = f"{user}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _command(*words: str) -> bytes:
    """One Redis command in RESP."""
    encoded = [word.encode() for word in words]
    return f"*{len(encoded)}\r\n".encode() + b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in encoded)


def redis_answers(host: str, port: int, timeout: float = 0.5, password: str | None = None) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall((_command("AUTH", password) if password else b"") + _command("PING"))
            reply = b""
            while b"\r\n" not in reply or (password and reply.count(b"\r\n") < 2):
                chunk = sock.recv(64)
                if not chunk:
                    break
                reply += chunk
            return reply.splitlines()[-1:] == [b"+PONG"]
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(port: int, seconds: float = 10, password: str | None = None) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if redis_answers("127.0.0.1", port, password=password):
            return True
        time.sleep(0.1)
    return False


def start_redis_server(port: int | None = None, password: str | None = None) -> subprocess.Popen:
    """A loopback redis-server without persistence; `password`: required of every client. The
    configuration goes in on stdin (`redis-server -`), so the password is not on its command line."""
    port = port or free_port()
    config = [f"port {port}", "bind 127.0.0.1", 'save ""', "appendonly no"] + ([f"requirepass {password}"] if password else [])
    proc = subprocess.Popen(
        ["redis-server", "-"], stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, preexec_fn=die_with_parent(),
    )
    assert proc.stdin is not None
    proc.stdin.write(("\n".join(config) + "\n").encode())
    proc.stdin.close()
    if not _wait_for(port, password=password):
        proc.kill()
        raise RuntimeError(f"redis-server did not answer on port {port}")
    proc.port = port  # type: ignore[attr-defined]
    return proc


def start_embedded(port: int | None = None):
    from fakeredis import TcpFakeServer

    port = port or free_port()
    server = TcpFakeServer(("127.0.0.1", port), server_type="redis")
    threading.Thread(target=server.serve_forever, name="fakeredis", daemon=True).start()
    if not _wait_for(port):
        raise RuntimeError("the embedded Redis did not start")
    return server, port


def resolve(configured: str | None, prefer_local: bool = True) -> Broker:
    if configured:
        return Broker(configured, "configured")
    if prefer_local and redis_answers("127.0.0.1", 6379):
        return Broker("redis://127.0.0.1:6379/0", "local-redis")
    if shutil.which("redis-server"):
        try:
            password = secrets.token_urlsafe(24)  # URL-safe: it goes in the broker URL as it is
            proc = start_redis_server(password=password)
            return Broker(f"redis://:{password}@127.0.0.1:{proc.port}/0", "started-redis", process=proc)
        except (OSError, RuntimeError) as exc:
            log.warning("could not start redis-server (%s); using the embedded one", exc)
    server, port = start_embedded()
    log.warning("no Redis found: using an embedded fakeredis, fine for a try-out but about 25x slower")
    return Broker(f"redis://127.0.0.1:{port}/0", "embedded", server=server)
