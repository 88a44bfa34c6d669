"""Celery configuration and task names, shared so web can enqueue by name without importing worker/."""
from __future__ import annotations

from celery import Celery

from shared.settings import Settings

TASK_CLASSIFY = "dogbreed.classify"
TASK_NOOP = "dogbreed.noop"
TASK_CLASSIFY_CHUNK = "dogbreed.classify_chunk"
TASK_NOOP_CHUNK = "dogbreed.noop_chunk"
TASK_WEBHOOK = "dogbreed.webhook"  # (job id[, event]): the job's delivery
TASK_ALBUM_WEBHOOK = "dogbreed.album_webhook"  # (album id, event): an album's one delivery
WEBHOOK_TASKS = (TASK_WEBHOOK, TASK_ALBUM_WEBHOOK)  # they go on webhook_queue, never a lane's list
# A job row records its pipeline; this is the task that runs it (the reaper resends the same one).
PIPELINE_TASKS = {"classify": TASK_CLASSIFY, "noop": TASK_NOOP}
# An album goes out as chunks of up to DOGBREED_MAX_BATCH job ids, one message each: one claim,
# one shared forward pass, one bulk write and one ack for the whole chunk.
CHUNK_TASKS = {"classify": TASK_CLASSIFY_CHUNK, "noop": TASK_NOOP_CHUNK}
PIPELINES = tuple(PIPELINE_TASKS)
JOB_TASKS = tuple(PIPELINE_TASKS.values())  # the tasks whose one argument is a job id
JOB_CHUNK_TASKS = tuple(CHUNK_TASKS.values())  # the tasks whose one argument is a list of job ids


def task_for(pipeline: str) -> str:
    """The task that runs a job of this pipeline (rows from before pipelines were recorded: classify)."""
    return PIPELINE_TASKS.get(pipeline, TASK_CLASSIFY)


def chunk_task_for(pipeline: str) -> str:
    """The task that runs a chunk of jobs of this pipeline."""
    return CHUNK_TASKS.get(pipeline, TASK_CLASSIFY_CHUNK)


def chunk_task_id(album_id: str, index: int) -> str:
    """A chunk message's Celery id names its album and its place in it, as a single job's message is
    the job's id, so an operator finds either in Flower by the id the API gave (a retry keeps it)."""
    return f"album-{album_id}-chunk-{index + 1}"


def job_ids_of(task_name: str | None, args: object) -> list[str]:
    """The job ids a message of ours carries (none for other tasks): what the heartbeat holds and the
    reaper looks for, read one way for single and chunk messages."""
    if not isinstance(args, (list, tuple)) or not args:
        return []
    if task_name in JOB_TASKS:
        return [str(args[0])]
    if task_name in JOB_CHUNK_TASKS and isinstance(args[0], (list, tuple)):
        return [str(job_id) for job_id in args[0]]
    return []


# Priority lanes: what a person waits on (a single upload, any sync-mode request) goes ahead of album
# images. Two Redis lists per deployment, DOGBREED_QUEUE (interactive; webhooks have their own) and
# DOGBREED_QUEUE.bulk; every worker consumes both, interactive first: kombu's "priority" queue order
# keeps the BRPOP's list order fixed, so a waiting interactive message is always taken first.
# DOGBREED_LANES=0: one list, as before (the benchmark's baseline).
INTERACTIVE, BULK = "interactive", "bulk"
LANES = (INTERACTIVE, BULK)


def lane_for(album: bool, wait: bool = False) -> str:
    """The lane of a submit: a single upload, or anything a caller waits on in sync mode, is interactive."""
    return INTERACTIVE if wait or not album else BULK


def job_lane(lane: str | None, album_id: str | None) -> str:
    """A job row's lane (rows from before lanes were recorded: album jobs are bulk)."""
    return lane if lane in LANES else lane_for(album_id is not None)


def lane_queue(settings: Settings, lane: str) -> str:
    """The broker list of a lane."""
    return f"{settings.queue}.{BULK}" if lane == BULK and settings.lanes else settings.queue


def lane_queues(settings: Settings) -> list[str]:
    """Every lane's list, interactive first (one list when lanes are off)."""
    return list(dict.fromkeys(lane_queue(settings, lane) for lane in LANES))


def webhook_queue(settings: Settings) -> str:
    """The broker list of webhook deliveries: apart from the lanes, so a backlog of deliveries is seen
    as such and never waits behind album images (the worker hands each to its delivery pool)."""
    return f"{settings.queue}.webhooks"


def queue_for(settings: Settings, task_name: str, lane: str = INTERACTIVE) -> str:
    """Where a message of this task goes: a delivery to webhook_queue, anything else to its lane."""
    return webhook_queue(settings) if task_name in WEBHOOK_TASKS else lane_queue(settings, lane)


def worker_queues(settings: Settings, queues: list[str]) -> list[str]:
    """A worker that serves the deployment's queue serves every lane: interactive first, then the
    webhook deliveries and its own node queues, bulk last; that order is the order it takes messages in."""
    if settings.queue not in queues:
        return list(queues)
    first, *rest = lane_queues(settings)
    return list(dict.fromkeys([first, webhook_queue(settings), *queues, *rest]))


# Enqueue must not hang a web request when Redis is away: a few quick tries, then 503.
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}


def celery_config(settings: Settings) -> dict:
    broker = settings.require_broker()
    longest_job_s = max(settings.job_deadline_s * 2, 3600)
    return {
        "broker_url": broker,
        "result_backend": None,
        "task_ignore_result": True,  # the database holds results; Redis carries work
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_default_queue": settings.queue,
        "task_acks_late": True,  # a message is acked only after its job row is final
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        "worker_prefetch_multiplier": 1,
        "worker_proc_alive_timeout": 300,  # model loading outlasts Celery's 4 s default
        "worker_send_task_events": True,  # Flower
        "task_send_sent_event": True,
        "worker_hijack_root_logger": False,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            # Unacked messages return to the queue after this; longer than any job (see reaper).
            "visibility_timeout": longest_job_s,
            "socket_connect_timeout": 3,
            "socket_timeout": 10,
            "queue_order_strategy": "priority",  # lanes: the -Q order, never rotated (see LANES)
        },
        "broker_pool_limit": 10,
        "task_publish_retry_policy": PUBLISH_RETRY_POLICY,
    }


def make_celery(settings: Settings, name: str = "dogbreed") -> Celery:
    app = Celery(name)
    app.conf.update(celery_config(settings))
    return app
