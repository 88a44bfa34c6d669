"""`dogbreed web`, `dogbreed worker`, `dogbreed flower`: one service each, as docker-compose runs them."""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from cli.supervise import Service, Supervisor
from shared.settings import LOOPBACK_HOSTS, Settings


def visible_gpus() -> list[str]:
    """GPU indices, read without importing TensorFlow (it must not load in a parent that spawns)."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g for g in env.split(",") if g.strip() and g.strip() != "-1"]
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
    except (subprocess.SubprocessError, OSError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def worker_services(settings: Settings, gpus: str = "all") -> list[Service]:
    """One worker per GPU, each pinned by CUDA_VISIBLE_DEVICES with its own node name and queue; each
    also serves both lanes of DOGBREED_QUEUE, interactive first (celeryconf.worker_queues adds them)."""
    chosen = visible_gpus() if gpus == "all" else ([] if gpus == "cpu" else [g.strip() for g in gpus.split(",") if g.strip()])
    host = socket.gethostname()
    if not chosen:
        return [Service("worker-cpu", _node_argv(f"cpu@{host}", [settings.queue, f"{settings.queue}.cpu"]),
                        {"CUDA_VISIBLE_DEVICES": "-1", **_metrics_port(settings, 0)})]
    return [
        Service(f"worker-gpu{g}", _node_argv(f"gpu{g}@{host}", [settings.queue, f"{settings.queue}.gpu{g}"]),
                {"CUDA_VISIBLE_DEVICES": g, **_metrics_port(settings, i)})
        for i, g in enumerate(chosen)
    ]


def _metrics_port(settings: Settings, index: int) -> dict[str, str]:
    """Worker processes on one host take DOGBREED_METRICS_PORT, +1, +2 ... in GPU order."""
    return {"DOGBREED_METRICS_PORT": str(settings.metrics_port + index)} if settings.metrics_port else {}


def _node_argv(node: str, queues: list[str]) -> list[str]:
    return [sys.executable, "-m", "cli.main", "worker", "--node", node, "--queues", ",".join(queues)]


REQUEST_THREADS = 4


def web_service(settings: Settings, workers: int = 2) -> Service:
    """gunicorn, with a folder for prometheus_client's multiprocess mode (emptied by `fresh_metrics_dir`)."""
    return Service("web", [
        # gthread: REQUEST_THREADS for submits and reads, plus one per waiter a process may hold (web/waiting.py),
        # so waiting requests and event streams never take the threads submits need.
        sys.executable, "-m", "gunicorn", "--workers", str(workers), "--threads", str(REQUEST_THREADS + settings.max_waiters),
        "--bind", f"{settings.host}:{settings.port}", "--graceful-timeout", "10",
        # JSON logs: the app writes the access lines itself (with the request id)
        *([] if settings.log_format == "json" else ["--access-logfile", "-"]),
        "--config", "python:web.gunicorn_conf", "web.wsgi:app",
    ], {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir(settings))})


def metrics_dir(settings: Settings) -> Path:
    return (settings.var_dir / "metrics" / "web").resolve()


def fresh_metrics_dir(settings: Settings) -> Path:
    """Emptied at each start of `dogbreed web`/`up`: the counters of processes gone before do not linger."""
    folder = metrics_dir(settings)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def flower_service(settings: Settings) -> Service:
    """The broker URL and the password travel in the environment, not the argv anyone sees in `ps`."""
    argv = [sys.executable, "-m", "celery", "flower", f"--port={settings.flower_port}", f"--address={settings.host}"]
    env = {"CELERY_BROKER_URL": settings.require_broker()}
    if settings.flower_user and settings.flower_password:
        env["FLOWER_BASIC_AUTH"] = f"{settings.flower_user}:{settings.flower_password}"
    elif settings.host not in LOOPBACK_HOSTS:
        raise SystemExit("dogbreed: Flower would be open to the network without a password; set "
                         "DOGBREED_FLOWER_USER and DOGBREED_FLOWER_PASSWORD, or DOGBREED_HOST=127.0.0.1")
    return Service("flower", argv, env)


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    if name == "worker":
        parser.add_argument("--gpus", default="all", help="'all' (default), 'cpu', or indices like 0,1")
        parser.add_argument("--node", help=argparse.SUPPRESS)  # run one node in this process
        parser.add_argument("--queues", help=argparse.SUPPRESS)
        parser.add_argument("--loglevel", default="INFO")
    elif name == "web":
        parser.add_argument("--workers", type=int, default=2)


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    if args.command == "worker" and args.node:
        from worker.celery_app import run_worker  # TensorFlow loads only in this, the node process

        run_worker(settings, args.node, (args.queues or settings.queue).split(","), args.loglevel)
        return 0
    if args.command == "worker":
        settings.require_broker()
        services = worker_services(settings, args.gpus)
    elif args.command == "web":
        if not settings.secret_key:
            # Every gunicorn process must sign sessions with the same key: keep one in var/, as `up` does.
            from cli.private_files import secret_key

            os.environ["DOGBREED_SECRET_KEY"] = secret_key(settings.var_dir)
            print(f"dogbreed web: DOGBREED_SECRET_KEY is not set; using the key kept in {settings.var_dir / 'secret_key'}",
                  file=sys.stderr)
        fresh_metrics_dir(settings)
        services = [web_service(settings, args.workers)]
    else:
        services = [flower_service(settings)]
    return Supervisor(services).run()
