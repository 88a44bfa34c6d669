"""The Celery client: web enqueues job ids by task name and never imports worker code."""
from __future__ import annotations

from celery import Celery
from flask import Flask, current_app

from shared import logs
from shared.celeryconf import INTERACTIVE, PUBLISH_RETRY_POLICY, make_celery, queue_for
from shared.errors import FixedCodeError


class BrokerUnavailable(FixedCodeError, RuntimeError):
    code = "queue_unavailable"
    status = 503


def init_app(app: Flask) -> None:
    settings = app.config["SETTINGS"]
    app.extensions["celery"] = make_celery(settings, name="dogbreed-web") if settings.broker_url else None


def client() -> Celery:
    celery = current_app.extensions["celery"]
    if celery is None:
        raise BrokerUnavailable("No broker is configured: set DOGBREED_BROKER_URL (e.g. redis://127.0.0.1:6379/0).")
    return celery


def enqueue(task_name: str, job_id: str | list[str], task_id: str | None = None, lane: str = INTERACTIVE,
            more: tuple[str, ...] = ()) -> None:
    """Send the task its one argument: a job id, or a chunk's list of job ids, into its lane's list (a
    webhook delivery into the webhook list);
    `task_id` is the message's Celery id (Celery makes one up when None); `more`: further arguments."""
    settings = current_app.config["SETTINGS"]
    try:
        client().send_task(task_name, args=[job_id, *more], task_id=task_id, queue=queue_for(settings, task_name, lane), retry=True,
                           retry_policy=PUBLISH_RETRY_POLICY,
                           headers={"request_id": logs.request_id_var.get()})  # joins the worker's logs to this request
    except BrokerUnavailable:
        raise
    except Exception as exc:  # kombu raises several types when Redis is away
        raise BrokerUnavailable(f"The job queue is not reachable ({type(exc).__name__}); try again in a minute.") from exc


def ping() -> None:
    with client().connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
