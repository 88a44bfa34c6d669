"""A real S3-protocol server for the tests: moto's standalone server (`moto[server]`), on 127.0.0.1."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from cli.broker import free_port

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class MotoServer:
    """`python -m moto.server` as a child; `url` once it accepts connections."""

    def __init__(self, log_path: Path, host: str = "127.0.0.1", port: int | None = None, prefix: list[str] = ()) -> None:
        self.host, self.port = host, port or free_port()
        self.url = f"http://{host}:{self.port}"
        self.log_path = log_path
        self.prefix = list(prefix)  # e.g. ["ip", "netns", "exec", NAME]
        self.proc: subprocess.Popen | None = None

    def start(self, timeout_s: float = 30) -> str | None:
        """None when it runs; else why it could not start (the caller skips with that reason)."""
        try:
            import moto.server  # noqa: F401
        except ImportError as exc:
            return f"moto[server] is not installed ({exc}); pip install 'moto[server]'"
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([*self.prefix, sys.executable, "-m", "moto.server", "-H", self.host,
                                      "-p", str(self.port)], stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return f"moto's server exited ({self.proc.returncode}): {self.log_path.read_text()[-500:]}"
            if self.prefix or _answers(self.host, self.port):
                return None
            time.sleep(0.2)
        self.stop()
        return f"moto's server did not answer on {self.url} within {timeout_s}s"

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def new_bucket(endpoint_url: str) -> str:
    """A bucket of the calling test's own."""
    from shared.s3 import make_client

    name = f"dogbreed-{uuid.uuid4().hex[:12]}"
    make_client(endpoint_url).create_bucket(Bucket=name)
    return name
