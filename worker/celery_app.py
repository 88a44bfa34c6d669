"""The worker's Celery app: shared configuration, our tasks, models loaded once at start-up.

The pool is `threads`: one process per GPU, with as many task threads as a batch holds, all
feeding one inference thread (see batcher.py). Nothing forks after TensorFlow is imported.
"""
from __future__ import annotations

import logging

from celery import Celery
from celery.signals import setup_logging, worker_init, worker_shutdown

from shared import logs
from shared.celeryconf import make_celery
from shared.settings import Settings
from worker import metrics, tasks
from worker.maintenance import Maintenance
from worker.runtime import Runtime

log = logging.getLogger(__name__)


def create_worker_app(settings: Settings) -> tuple[Celery, Runtime]:
    app = make_celery(settings, name="dogbreed-worker")
    # Prefetch as many messages as one batch holds: one per task thread, no more.
    app.conf.worker_prefetch_multiplier = 1
    runtime = Runtime(settings)
    tasks.register(app, runtime)

    maintenance = Maintenance(settings, settings.reaper_interval_s, runtime.holder)

    @worker_init.connect(weak=False)
    def _load_models(**_: object) -> None:
        runtime.setup()
        maintenance.start()
        metrics.serve(settings)
        log.info("worker ready: %s", runtime.describe())

    @worker_shutdown.connect(weak=False)
    def _close(**_: object) -> None:
        maintenance.stop()
        runtime.close()

    return app, runtime


def worker_argv(settings: Settings, node: str, queues: list[str], loglevel: str = "INFO") -> list[str]:
    return [
        "worker", "--pool", "threads", "--concurrency", str(settings.max_batch),
        "--hostname", node, "--queues", ",".join(queues), "--loglevel", loglevel,
        "--without-mingle", "--without-gossip",
    ]


def run_worker(settings: Settings, node: str, queues: list[str], loglevel: str = "INFO") -> None:
    app, _ = create_worker_app(settings)
    if logs.configure(settings, node, getattr(logging, loglevel.upper(), logging.INFO)):
        setup_logging.connect(lambda **_: None, weak=False)  # a receiver: Celery keeps our JSON handler
    argv = worker_argv(settings, node, queues, loglevel)
    app.worker_main((["--quiet"] if settings.log_format == "json" else []) + argv)  # no banner: JSON lines only
