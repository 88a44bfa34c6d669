"""The Redis key layout of worker liveness, which web's /readyz reads and workers write.

Each worker process keeps `key_prefix(queue) + node` alive with a short TTL (worker/heartbeat.py),
lists the jobs it holds under `held_prefix(queue) + node`, and joins `known_key(queue)` until a
clean stop. Job changes are published on `job_events_channel(queue)` (shared/job_events.py).
The reaper tells a Redis restart or data loss from a death by `epoch_key(queue)`.
"""
from __future__ import annotations

import redis


def key_prefix(queue: str) -> str:
    return f"{queue}:worker-alive:"


def held_prefix(queue: str) -> str:
    return f"{queue}:worker-held:"


def known_key(queue: str) -> str:
    return f"{queue}:worker-known"


def job_events_channel(queue: str) -> str:
    return f"{queue}:job-events"


def epoch_key(queue: str) -> str:
    """A hash {run_id, since}: the Redis run the reaper last saw, and since when (Redis time)."""
    return f"{queue}:broker-epoch"


def webhook_inflight_key(queue: str, kind: str, thing_id: str, event: str) -> str:
    """Set (with the attempt's deadline as TTL) while a delivery of this job's or album's event is being
    posted: a second copy, the reaper's or a redelivered message's, sees it and stays away."""
    return f"{queue}:webhook-inflight:{kind}:{thing_id}:{event}"


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def names_under(client: redis.Redis, prefix: str) -> set[str]:
    """The names that follow `prefix` in the keys that start with it."""
    return {text(key)[len(prefix):] for key in client.scan_iter(match=f"{prefix}*", count=500)}


def alive_nodes(client: redis.Redis, queue: str) -> set[str]:
    """Node names (as recorded on the job rows) whose heartbeat has not expired."""
    return names_under(client, key_prefix(queue))


# Queue entries a worker could not read as a message (not kombu's JSON, or JSON that is not one) are
# moved here, newest first, one JSON object each: {"queue", "reason", "at", "entry" | "entry_base64"}.
DEAD_LETTERS = "dogbreed.dead"
DEAD_LETTERS_KEPT = 10_000  # the newest ones; an older entry is trimmed away
