"""Tell a Redis restart, or Redis losing its data, from a worker's death.

Liveness lives in Redis: a heartbeat key per node, refreshed every TTL/5. When Redis restarts every
key may be gone (no persistence, a failover) or stale, and a live node's key comes back only at its
next beat: read at once, every node would look dead. So a heartbeat counts as missing only once
Redis has been up a whole TTL (INFO server's uptime).
Redis can also come back without its data, and with it the messages of queued jobs. The reaper
keeps a marker, `epoch_key(queue)`: the run id of the Redis it saw (INFO server) and since when
(Redis's own clock, one clock for every host). A marker gone (the data was lost, or this is the
queue's first look) or naming another run (a restart) starts a new epoch, and for one TTL the reaper
sends again the jobs whose messages are nowhere in Redis (worker/reaper.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import redis

from shared.redis_keys import epoch_key, text


@dataclass(frozen=True)
class Epoch:
    run_id: str  # "" where Redis does not say (the embedded fakeredis has no INFO)
    age_s: float  # since this queue's reaper first saw this Redis run with its data, by Redis's clock
    up_s: float  # Redis's uptime; without INFO, the epoch's age
    new: bool  # this look found the marker gone or naming another run


def redis_now(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1e6


def server_info(client: redis.Redis) -> tuple[str, float | None]:
    """Redis's run id and uptime; ("", None) where INFO is refused or unknown."""
    try:
        info = client.info("server")
    except redis.ResponseError:
        return "", None
    uptime = info.get("uptime_in_seconds")
    return str(info.get("run_id", "")), float(uptime) if uptime is not None else None


def look(client: redis.Redis, queue: str) -> Epoch:
    """The current epoch; a new one begins when Redis restarted or lost its data since the last look."""
    now = redis_now(client)
    run_id, uptime = server_info(client)
    marker = {text(k): text(v) for k, v in client.hgetall(epoch_key(queue)).items()}
    age, new = 0.0, True
    if marker.get("run_id") == run_id:
        try:
            age, new = max(0.0, now - float(marker["since"])), False
        except (KeyError, ValueError):
            pass  # a damaged marker: start again
    if new:
        client.hset(epoch_key(queue), mapping={"run_id": run_id, "since": repr(now)})
    return Epoch(run_id, age, uptime if uptime is not None else age, new)
