"""Find or make a Redis for `dogbreed up`: configured, local, started from PATH, or embedded."""
from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass

from cli.lifeline import die_with_parent

log = logging.getLogger("dogbreed.broker")


@dataclass
class Broker:
    url: str
    kind: str  # configured | local-redis | started-redis | embedded
    process: subprocess.Popen | None = None
    server: object | None = None

    def describe(self) -> str:
        return {
            "configured": f"{self.url} (from DOGBREED_BROKER_URL)",
            "local-redis": f"{self.url} (the Redis already answering on 127.0.0.1:6379)",
            "started-redis": f"{self.url} (a redis-server started from PATH for this run)",
            "embedded": f"{self.url} (embedded fakeredis: for trying out only, about 1/25 of a real Redis's "
                        "task rate; install redis-server for real use)",
        }[self.kind]

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def redis_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(port: int, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if redis_answers("127.0.0.1", port):
            return True
        time.sleep(0.1)
    return False


def start_redis_server(port: int | None = None) -> subprocess.Popen:
    port = port or free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, preexec_fn=die_with_parent(),
    )
    if not _wait_for(port):
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
            proc = start_redis_server()
            return Broker(f"redis://127.0.0.1:{proc.port}/0", "started-redis", process=proc)
        except (OSError, RuntimeError) as exc:
            log.warning("could not start redis-server (%s); using the embedded one", exc)
    server, port = start_embedded()
    log.warning("no Redis found: using an embedded fakeredis, fine for a try-out but about 25x slower")
    return Broker(f"redis://127.0.0.1:{port}/0", "embedded", server=server)
