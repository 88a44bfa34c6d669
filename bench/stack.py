"""A throwaway `dogbreed up` for a benchmark: its own folder, SQLite, queue and port; stopped after."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cli.broker import free_port  # noqa: E402


def _wait_ready(proc: subprocess.Popen, url: str, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dogbreed up exited ({proc.returncode}):\n{log.read_text(errors='replace')[-4000:]}")
        try:
            if requests.get(f"{url}/readyz", timeout=5).status_code == 200:
                return
        except requests.RequestException:  # not listening yet, or too busy starting to answer
            pass
        time.sleep(0.5)
    raise RuntimeError(f"dogbreed up not ready after {timeout_s}s:\n{log.read_text(errors='replace')[-4000:]}")


@dataclass
class Stack:
    url: str
    env: dict[str, str]  # for `dogbreed bench`: the broker and API key the service uses
    queue: str
    log: Path
    up_env: dict[str, str] | None = None  # the whole environment `up` ran with (to start more workers alike)


@contextmanager
def stack(backbone: str, weights: str, batch: int, delay_ms: int, gpus: str = "cpu",
          broker_url: str | None = None, extra_env: dict[str, str] | None = None) -> Iterator[Stack]:
    folder = Path(tempfile.mkdtemp(prefix="dogbreed-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOGBREED_")}
    env.update(PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3", DOGBREED_BACKBONE=backbone,
               DOGBREED_BACKBONE_WEIGHTS=weights, DOGBREED_MAX_BATCH=str(batch),
               DOGBREED_MAX_BATCH_DELAY_MS=str(delay_ms), DOGBREED_RATE_LIMIT_PER_MINUTE="0",
               DOGBREED_QUEUE=f"bench-{uuid.uuid4().hex[:8]}")
    env.update(extra_env or {})
    if broker_url:
        env["DOGBREED_BROKER_URL"] = broker_url
    if gpus == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = "-1"
    port = free_port()
    log = folder / "up.log"
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "up", "--port", str(port), "--flower-port",
                             str(free_port()), "--gpus", gpus, "--no-flower"],
                            cwd=folder, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(proc, url, log, 180)
        key = (folder / "var" / "local-api-key").read_text().strip()
        broker = next(line.split("broker:", 1)[1].split()[0] for line in log.read_text().splitlines() if "broker:" in line)
        yield Stack(url, {"DOGBREED_API_KEY": key, "DOGBREED_BROKER_URL": broker_url or broker},
                    env["DOGBREED_QUEUE"], log, {**env, "DOGBREED_BROKER_URL": broker_url or broker})
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        print(f"stack log: {log}", file=sys.stderr)
