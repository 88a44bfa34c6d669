"""Worker liveness: each worker process keeps a Redis key with a short TTL alive while it runs.

A SIGKILLed or OOM-killed worker stops refreshing; its key expires within DOGBREED_HEARTBEAT_TTL_S,
and the reaper gives its jobs back to the queue (worker.reaper.Reaper.reap_orphans): the rows it
was `running`, and the ones whose messages it had received but not started (still `queued`; Redis
would return those messages only after its hour-long visibility timeout). Each worker lists the
latter in a Redis set per node, added on receipt and removed when the task returns: one SADD and
one SREM per message, whether it carries one job or a chunk of an album's jobs.
A SIGKILL can also lose a message between Redis handing it over and kombu recording it: once a
node is found dead, queued jobs with no message left in Redis (`messages_in_broker`) are resent.
Web's /readyz counts the keys (shared/redis_keys.py) to say whether any worker is alive.
"""
from __future__ import annotations

import base64
import json
import logging
import threading
import time
from typing import cast

import redis

from shared.celeryconf import job_ids_of
from shared.redis_keys import held_prefix, key_prefix, known_key, names_under, text

log = logging.getLogger(__name__)


def hold(client: redis.Redis, queue: str, node: str, job_ids: list[str]) -> None:
    """This node received the message of these jobs; it is the one that must run them."""
    if job_ids:
        client.sadd(held_prefix(queue) + node, *job_ids)


def release(client: redis.Redis, queue: str, node: str, job_ids: list[str]) -> None:
    if job_ids:
        client.srem(held_prefix(queue) + node, *job_ids)


def held_by(client: redis.Redis, queue: str, node: str) -> set[str]:
    return {text(v) for v in client.smembers(held_prefix(queue) + node)}


def forget(client: redis.Redis, queue: str, node: str, job_ids: set[str]) -> None:
    if job_ids:
        client.srem(held_prefix(queue) + node, *job_ids)


def nodes_holding(client: redis.Redis, queue: str) -> set[str]:
    return names_under(client, held_prefix(queue))


# kombu's Redis transport keeps every delivered, not yet acknowledged message here (the defaults);
# a waiting message is an entry of the list named after the queue.
UNACKED_KEY, UNACKED_INDEX_KEY = "unacked", "unacked_index"


def _jobs_of(raw: bytes | str | None, queues: list[str] | None) -> list[str]:
    """The job ids a kombu message carries: one, a chunk, or none when it is not one of our job
    tasks (sent to one of `queues`). Anything on a list may be junk someone pushed: it carries none."""
    if raw is None:  # hmget's answer for a message acked since its tag was listed
        return []
    try:
        data = json.loads(raw)
        message, routing_key = (data[0], data[2]) if isinstance(data, list) else (data, None)
        if not isinstance(message, dict) or (queues is not None and routing_key not in queues):
            return []
        headers, properties = message.get("headers") or {}, message.get("properties") or {}
        if not isinstance(headers, dict) or not isinstance(properties, dict):
            return []
        body = message["body"]
        if properties.get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)
        return job_ids_of(headers.get("task"), args[0]) if isinstance(args, list) and args else []
    except (TypeError, ValueError, KeyError, IndexError):  # binascii.Error and JSON errors are ValueErrors
        return []


def messages_in_broker(client: redis.Redis, queues: list[str], delivered_within_s: float = 0.0) -> set[str]:
    """Job ids whose message (single or chunk) still stands a chance: waiting in one of the lanes' lists
    (shared.celeryconf.lane_queues), or handed
    to a worker in the last `delivered_within_s` seconds (it may not have recorded it yet). A message
    handed over longer ago and not held by a live node belongs to a dead one: kombu would give it back
    only after its visibility timeout (an hour). Read in that order, so a message moving from the list
    to a worker is seen in one of the two."""
    found = {job_id for queue in queues for raw in client.lrange(queue, 0, -1) for job_id in _jobs_of(raw, None)}
    if delivered_within_s > 0:
        # without withscores the reply is the members alone; redis-py types it as any of its shapes
        tags = cast("list[bytes]", client.zrangebyscore(UNACKED_INDEX_KEY, time.time() - delivered_within_s, "+inf"))
        if tags:
            found |= {job_id for raw in client.hmget(UNACKED_KEY, tags) for job_id in _jobs_of(raw, queues)}
    return found


def known_nodes(client: redis.Redis, queue: str) -> set[str]:
    """Nodes that started a heartbeat and did not stop cleanly: alive ones, and dead ones to reap."""
    return {text(v) for v in client.smembers(known_key(queue))}


def forget_node(client: redis.Redis, queue: str, node: str) -> None:
    client.srem(known_key(queue), node)


class Heartbeat:
    """A daemon thread that refreshes this node's key every TTL/5 seconds; `stop` deletes it."""

    def __init__(self, client: redis.Redis, queue: str, node: str, ttl_s: int) -> None:
        self.client = client
        self.queue, self.node = queue, node
        self.key = key_prefix(queue) + node
        self.ttl_s = max(2, ttl_s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)

    def start(self) -> None:
        """Beat now and keep beating; Redis away at start is one more beat the thread retries."""
        try:
            self.beat()
        except redis.RedisError as exc:
            log.warning("first heartbeat not sent: %s", exc)
        self._thread.start()

    def beat(self) -> None:
        """Also rejoins the known nodes: Redis may have come back without them."""
        with self.client.pipeline(transaction=False) as pipe:
            pipe.set(self.key, "1", ex=self.ttl_s)
            pipe.sadd(known_key(self.queue), self.node)
            pipe.execute()

    def stop(self) -> None:
        """A clean stop says so at once: the reaper need not wait for the key to expire."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)  # a beat in flight must not rejoin the known nodes after us
        try:
            self.client.delete(self.key)
            forget_node(self.client, self.queue, self.node)
        except redis.RedisError:
            pass

    def _loop(self) -> None:
        while not self._stop.wait(self.ttl_s / 5):
            try:
                self.beat()
            except redis.RedisError as exc:  # Redis away: the next beat tries again
                log.warning("heartbeat not sent: %s", exc)
