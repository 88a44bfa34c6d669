"""Queue entries that are not messages are set aside in `dogbreed.dead`, never the worker's death.

Anyone who can write the broker's Redis can push junk onto a queue list. Two layers read an entry
before a task runs, and each can choke on it:
- kombu pops the entry (BRPOP) and builds its envelope (JSON, then `Message`): an error there is
  Celery's "Unrecoverable error" and the worker exits, with every job it held. `Channel` screens the
  BRPOP reply first; an entry kombu could not build is set aside and the pop reads as empty. The pop
  already removed it from the list, so there is nothing to ack.
- Celery turns the envelope into a task: no task name, a body that does not decode, an unknown task
  or a malformed request. Celery logs and drops some of these and raises on others; `Consumer` sets
  every one aside and acks it.
Each entry set aside is logged and pushed, newest first, to DEAD_LETTERS as one JSON object
(`queue`, `reason`, `at`, and `entry`, the entry as it was, or `entry_base64` when it is not UTF-8).
The list keeps the newest DEAD_LETTERS_KEPT. Only the worker's Redis transport is changed
(`configure`); the web and the reaper publish with kombu's own.
"""
from __future__ import annotations

import base64
import json
import logging
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from typing import Any, Callable
from urllib.parse import urlparse

import redis
from celery import Celery
from celery.worker.consumer import Consumer as CeleryConsumer
from kombu.transport import redis as kombu_redis
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps, loads

from shared.redis_keys import DEAD_LETTERS, DEAD_LETTERS_KEPT

log = logging.getLogger("dogbreed.dead_letters")
REDIS_SCHEMES = ("redis", "rediss")
SHOWN_BYTES = 200  # of an entry, in the log line


def set_aside(client: redis.Redis, queue: str, entry: bytes | str, reason: str) -> None:
    """Log the entry and push it to the dead letters; Redis away is one more line in the log."""
    raw = entry.encode("utf-8", "surrogateescape") if isinstance(entry, str) else entry
    log.warning("set aside an entry of queue %s that is not a task message (%s): %r", queue, reason,
                raw[:SHOWN_BYTES])
    record: dict[str, str] = {"queue": queue, "reason": reason, "at": datetime.now(timezone.utc).isoformat()}
    try:
        record["entry"] = raw.decode("utf-8")
    except UnicodeDecodeError:
        record["entry_base64"] = base64.b64encode(raw).decode()
    try:
        with client.pipeline() as pipe:
            pipe.lpush(DEAD_LETTERS, json.dumps(record))
            pipe.ltrim(DEAD_LETTERS, 0, DEAD_LETTERS_KEPT - 1)
            pipe.execute()
    except redis.RedisError as exc:
        log.warning("could not record the entry in %s: %s", DEAD_LETTERS, exc)


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


class Channel(kombu_redis.Channel):
    """kombu's Redis channel, whose BRPOP replies are screened before kombu reads them."""

    def _create_client(self, asynchronous: bool = False) -> Any:
        client = super()._create_client(asynchronous)
        parse: Callable[..., Any] = client.parse_response

        def screened(connection: Any, command_name: str, *args: Any, **options: Any) -> Any:
            reply = parse(connection, command_name, *args, **options)
            if command_name == "BRPOP" and reply:
                key, entry = reply
                queue = bytes_to_str(key).rsplit(self.sep, 1)[0]
                reason = self._unreadable(entry)
                if reason is not None:
                    with self.conn_or_acquire() as other:  # not this connection: it is the poller's
                        set_aside(other, queue, entry, reason)
                    return None  # kombu takes it for an empty pop
            return reply

        client.parse_response = screened
        return client

    def _unreadable(self, entry: bytes | str) -> str | None:
        """Why kombu could not build a message of this entry, or None: it is built as kombu would."""
        try:
            self.Message(loads(bytes_to_str(entry)), channel=self)
        except Exception as exc:  # anything kombu's own reading would raise, and so end the worker
            return _why(exc)
        return None


class Transport(kombu_redis.Transport):
    Channel = Channel


class Consumer(CeleryConsumer):
    """Celery's consumer; a message it cannot make a task of is set aside and acked."""

    def create_task_handler(self, *args: Any, **kwargs: Any) -> Callable[[Any], Any]:
        handle = super().create_task_handler(*args, **kwargs)

        def on_task_received(message: Any) -> Any:
            try:
                return handle(message)
            except Exception as exc:  # raised by Celery's reading of the message: it would end the worker
                self._set_aside(message, _why(exc))
                if not message.acknowledged:
                    message.ack()
                return None

        return on_task_received

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        self._set_aside(message, f"its body does not decode: {_why(exc)}")
        super().on_decode_error(message, exc)

    def on_unknown_message(self, body: Any, message: Any) -> None:
        self._set_aside(message, "no task name")
        super().on_unknown_message(body, message)

    def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:
        """Set aside rather than failed: there is no result backend to tell, and a deploy that
        brings the task may want the message back."""
        self._set_aside(message, f"unknown task: {_why(exc)}")
        message.reject_log_error(log, self.connection_errors)

    def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:
        self._set_aside(message, f"invalid task: {_why(exc)}")
        super().on_invalid_task(body, message, exc)

    def _set_aside(self, message: Any, reason: str) -> None:
        """Once per message: Celery's own handlers may raise after ours ran."""
        if getattr(message, "_dogbreed_set_aside", False):
            return
        message._dogbreed_set_aside = True
        info = message.delivery_info or {}
        queue = str(info.get("routing_key") or info.get("exchange") or "?")
        raw = getattr(message, "_raw", None)
        entry = dumps(raw) if raw is not None else (message.body or b"")
        acquire: Callable[[], AbstractContextManager[redis.Redis]] | None = getattr(
            message.channel, "conn_or_acquire", None)
        if acquire is None:  # not Redis: the broker's own dead-lettering keeps it
            log.warning("dropped a message of queue %s that is not a task message (%s)", queue, reason)
            return
        with acquire() as client:
            set_aside(client, queue, entry, reason)


def configure(app: Celery, broker_url: str) -> None:
    """The worker reads its queues through the screening transport and consumer (Redis brokers)."""
    app.conf.worker_consumer = f"{__name__}:Consumer"
    if urlparse(broker_url).scheme in REDIS_SCHEMES:
        app.conf.broker_transport = f"{__name__}:Transport"
