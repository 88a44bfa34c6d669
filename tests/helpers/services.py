"""Start and find the real services the tests talk to."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from cli.broker import free_port, redis_answers

ROOT = Path(__file__).resolve().parents[2]
LIVE_WORKERS: set["WorkerProcess"] = set()  # stopped at the end of the session, whatever a test did
TEAM_SHARED = ROOT.parent / "shared"
REAL_DATA = TEAM_SHARED / "testdata" / "real"
REAL_MODELS = TEAM_SHARED / "models"
_started: list[subprocess.Popen] = []


def ensure_redis() -> tuple[str | None, str]:
    """The Redis at 127.0.0.1:6379 when it answers, else a redis-server of our own on a free port."""
    configured = os.environ.get("DOGBREED_TEST_REDIS_URL")
    if configured:
        return configured, ""
    if redis_answers("127.0.0.1", 6379):
        return "redis://127.0.0.1:6379/0", ""
    if not shutil.which("redis-server"):
        return None, "no Redis answers on 127.0.0.1:6379 and redis-server is not on PATH (apt-get install redis-server)"
    from cli.broker import start_redis_server

    proc = start_redis_server()
    _started.append(proc)
    return f"redis://127.0.0.1:{proc.port}/0", ""


def postgres_admin_url() -> str:
    return os.environ.get("DOGBREED_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def postgres_answers(url: str) -> bool:
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


def settings_env(settings) -> dict[str, str]:
    """The DOGBREED_* environment that reproduces `settings` in a child process."""
    env = {
        "DOGBREED_DATABASE_URL": settings.database_url,
        "DOGBREED_STORAGE_DIR": str(settings.storage_dir),
        "DOGBREED_MODEL_DIR": str(settings.model_dir),
        "DOGBREED_VAR_DIR": str(settings.var_dir),
        "DOGBREED_BACKBONE": settings.backbone,
        "DOGBREED_BACKBONE_WEIGHTS": settings.backbone_weights,
        "DOGBREED_QUEUE": settings.queue,
        "DOGBREED_MAX_BATCH": str(settings.max_batch),
        "DOGBREED_MAX_BATCH_DELAY_MS": str(settings.max_batch_delay_ms),
        "DOGBREED_JOB_DEADLINE_S": str(settings.job_deadline_s),
        "DOGBREED_REAPER_INTERVAL_S": str(settings.reaper_interval_s),
        "DOGBREED_MAX_ATTEMPTS": str(settings.max_attempts),
        "DOGBREED_MAX_CONCURRENT_DECODES": str(settings.max_concurrent_decodes),
        "DOGBREED_AUTH": "1" if settings.auth_required else "0",
        "DOGBREED_SECRET_KEY": settings.secret_key,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "CUDA_VISIBLE_DEVICES": "-1",
        "PYTHONUNBUFFERED": "1",
    }
    if settings.broker_url:
        env["DOGBREED_BROKER_URL"] = settings.broker_url
    return env


class WorkerProcess:
    """`dogbreed worker --node ...` as a subprocess; ready once it answers a Celery ping."""

    def __init__(self, settings, log_path: Path, node: str | None = None) -> None:
        self.settings = settings
        self.log_path = log_path
        self.node = node or f"test-{settings.queue}@localhost"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout_s: float = 90) -> None:
        env = {**os.environ, **settings_env(self.settings)}
        log = open(self.log_path, "ab")
        LIVE_WORKERS.add(self)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "worker", "--node", self.node, "--queues", self.settings.queue,
             "--loglevel", "INFO"],
            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.wait_ready(timeout_s)

    def wait_ready(self, timeout_s: float = 90) -> None:
        from shared.celeryconf import make_celery

        app = make_celery(self.settings, name="test-probe")
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"worker exited ({self.proc.returncode}):\n{self.log()}")
                if app.control.ping(destination=[self.node], timeout=0.5):
                    return
                time.sleep(0.3)
        finally:
            app.close()
        raise RuntimeError(f"worker not ready after {timeout_s}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:] if self.log_path.exists() else ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_for(predicate, timeout_s: float = 60, interval_s: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def port() -> int:
    return free_port()
