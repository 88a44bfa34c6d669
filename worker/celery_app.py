"""The worker's Celery app: shared configuration, our tasks, models loaded once at start-up.

The pool is `threads`: one process per GPU, its task threads feeding one inference thread (see
batcher.py) through a pool of decode threads (runtime.py). Nothing forks after TensorFlow is imported.
"""
from __future__ import annotations

import logging

from celery import Celery
from celery.signals import setup_logging, task_postrun, task_received, worker_init, worker_shutdown

from shared import images, job_events, logs
from shared.celeryconf import job_ids_of, make_celery, worker_queues
from shared.settings import Settings
from worker import dead_letters, heartbeat, metrics, tasks, webhooks
from worker.maintenance import Maintenance
from worker.runtime import Runtime

log = logging.getLogger(__name__)


def create_worker_app(settings: Settings) -> tuple[Celery, Runtime]:
    app = make_celery(settings, name="dogbreed-worker")
    dead_letters.configure(app, settings.require_broker())  # junk on the queue is set aside, not fatal
    images.set_max_concurrent_decodes(settings.max_concurrent_decodes)
    images.set_decode_memory_mb(settings.decode_memory_mb)
    # One message reserved per task thread, no more: the pipelining comes from the thread count
    # (`task_threads`), and a message waiting behind busy threads would only starve other workers.
    app.conf.worker_prefetch_multiplier = 1
    runtime = Runtime(settings)  # decides DOGBREED_MAX_BATCH when it is left to the worker
    tasks.register(app, runtime)
    webhooks.register(app, settings, runtime.sessions)
    job_events.publish_on_commit(runtime.writer.redis, settings.queue)  # web's waiters wake on these

    maintenance = Maintenance(settings, settings.reaper_interval_s, runtime.holder, runtime.sessions)
    node: list[str] = []  # this process's node name, known once the worker starts

    @worker_init.connect(weak=False)
    def _load_models(sender: object = None, **_: object) -> None:
        node[:] = [getattr(sender, "hostname", "") or ""]
        if node[0]:
            maintenance.take_back(node[0])  # what an earlier process of this node held: back on the queue now
        runtime.setup()
        maintenance.start(node[0] or None)
        metrics.serve(settings)
        log.info("worker ready: %s", runtime.describe())

    @task_received.connect(weak=False)
    def _hold(request: object = None, **_: object) -> None:
        """A message this process must run (one job or a chunk): listed, so the reaper can give its jobs
        back if we die before."""
        job_ids = job_ids_of(getattr(request, "name", None), getattr(request, "args", None))
        if job_ids and node and node[0]:
            _quietly(heartbeat.hold, maintenance.redis, settings.queue, node[0], job_ids)

    @task_postrun.connect(weak=False)
    def _release(task: object = None, args: object = None, **_: object) -> None:
        job_ids = job_ids_of(getattr(task, "name", None), args)
        if job_ids and node and node[0]:
            _quietly(heartbeat.release, maintenance.redis, settings.queue, node[0], job_ids)

    @worker_shutdown.connect(weak=False)
    def _close(**_: object) -> None:
        maintenance.stop()
        runtime.close()

    return app, runtime


def _quietly(op, *args: object) -> None:
    """Bookkeeping for the reaper must never fail a task: Redis away means the deadline reaper covers it."""
    try:
        op(*args)
    except Exception as exc:
        log.warning("could not record a held job: %s", exc)


def task_threads(max_batch: int) -> int:
    """Two batches' worth of messages at once: while one batch holds max_batch task threads waiting
    on the model pass, as many more are claiming and decoding the next batch's images, so the
    inference thread finds it gathered when it returns (equal to max_batch, nothing overlapped: the
    next batch could not start decoding until this one was written and acked). A chunk message
    fills a batch by itself, so two chunks in flight are the same overlap."""
    return 2 * max_batch


def worker_argv(settings: Settings, node: str, queues: list[str], loglevel: str = "INFO") -> list[str]:
    """The Celery command line; `settings.max_batch` is the one the runtime decided (never None here)."""
    return [
        "worker", "--pool", "threads", "--concurrency", str(task_threads(settings.max_batch or 1)),
        "--hostname", node, "--queues", ",".join(worker_queues(settings, queues)), "--loglevel", loglevel,
        "--without-mingle", "--without-gossip",
    ]


def run_worker(settings: Settings, node: str, queues: list[str], loglevel: str = "INFO") -> None:
    app, runtime = create_worker_app(settings)
    settings = runtime.settings  # DOGBREED_MAX_BATCH decided
    if logs.configure(settings, node, getattr(logging, loglevel.upper(), logging.INFO)):
        setup_logging.connect(lambda **_: None, weak=False)  # a receiver: Celery keeps our JSON handler
    argv = worker_argv(settings, node, queues, loglevel)
    app.worker_main((["--quiet"] if settings.log_format == "json" else []) + argv)  # no banner: JSON lines only
