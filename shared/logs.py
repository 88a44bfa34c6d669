"""Logs that join across processes: DOGBREED_LOG_FORMAT=json gives one JSON object per line, each with
the job id, the request id and the node (web@host, or the worker's Celery node name).

The web takes the request id from an `X-Request-Id` header (or makes one), puts it and the job id
into the task's message headers, and the worker sets both around the task's run, so one grep for a
job id finds the upload, the enqueue, the run and the result, whichever hosts they were on.
"""
from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Iterator

from shared.settings import Settings

job_id_var: ContextVar[str | None] = ContextVar("job_id", default=None)
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
_node: dict[str, str | None] = {"name": None}
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id(header: str | None) -> str:
    """The caller's X-Request-Id when it is a sane token, else a new one."""
    return header if header and REQUEST_ID.match(header) else uuid.uuid4().hex


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "job_id": getattr(record, "job_id", None) or job_id_var.get(),
            "request_id": getattr(record, "request_id", None) or request_id_var.get(),
            "node": _node["name"],
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(settings: Settings, node: str, level: int = logging.INFO) -> bool:
    """Name this process's node; with json, send every log record through one JSON handler. True if json."""
    _node["name"] = node
    if settings.log_format != "json":
        return False
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    return True


@contextmanager
def job_context(job_id: str | None, req_id: str | None = None) -> Iterator[None]:
    """Tag every record logged in this block (in this thread) with the job and request ids."""
    tokens = job_id_var.set(job_id), request_id_var.set(req_id)
    try:
        yield
    finally:
        job_id_var.reset(tokens[0])
        request_id_var.reset(tokens[1])
