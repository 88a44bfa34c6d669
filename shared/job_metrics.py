"""Finished-job counts and durations, kept in Redis (the broker) for the web's /metrics.

Why Redis and not the job table: jobs finish in worker processes on other hosts, and the web must
report a counter that only ever grows. Counting finished rows at scrape time would go DOWN each time
gc deletes old jobs, which Prometheus reads as a counter reset and turns into a false spike in
rate(). So whoever ends a job (the worker's result writer, the reaper) adds it here right after its
commit, once per job (the conditional UPDATE that finished it moved exactly one row); the web reads
these totals at scrape time. They survive web and worker restarts; a Redis that loses its data
resets them, which Prometheus handles as the reset it is.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

log = logging.getLogger(__name__)
JOB_SECONDS_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
NO_KIND = "none"  # a failed job has no result kind


@dataclass
class Ended:
    status: str
    kind: str
    seconds: float


@dataclass
class Totals:
    finished: dict[tuple[str, str], int] = field(default_factory=dict)  # (status, kind) -> jobs
    buckets: list[tuple[float, int]] = field(default_factory=list)  # cumulative, per upper bound
    count: int = 0
    sum: float = 0.0


def _keys(queue: str) -> tuple[str, str]:
    return f"{queue}:metrics:finished", f"{queue}:metrics:job_seconds"


def ended(status: str, result: dict | None, created_at: datetime | None, finished_at: datetime | None) -> Ended:
    seconds = (finished_at - created_at).total_seconds() if created_at and finished_at else 0.0
    return Ended(status, str((result or {}).get("kind") or NO_KIND), max(0.0, seconds))


def record(client, queue: str, jobs: list[Ended]) -> None:
    """Add jobs that just ended; never raises (a metrics blip must not fail a job)."""
    if not jobs or client is None:
        return
    finished, histogram = _keys(queue)
    try:
        pipe = client.pipeline(transaction=False)
        for job in jobs:
            pipe.hincrby(finished, f"{job.status}|{job.kind}", 1)
            for bound in JOB_SECONDS_BUCKETS:
                if job.seconds <= bound:
                    pipe.hincrby(histogram, repr(bound), 1)
            pipe.hincrby(histogram, "count", 1)
            pipe.hincrbyfloat(histogram, "sum", job.seconds)
        pipe.execute()
    except Exception as exc:
        log.warning("could not record %d finished job(s) for /metrics: %s", len(jobs), exc)


def read(client, queue: str) -> Totals:
    finished, histogram = _keys(queue)
    counts = {k.decode() if isinstance(k, bytes) else k: v for k, v in client.hgetall(finished).items()}
    hist = {k.decode() if isinstance(k, bytes) else k: v for k, v in client.hgetall(histogram).items()}
    totals = Totals()
    for key, value in counts.items():
        status, _, kind = key.partition("|")
        totals.finished[(status, kind)] = int(value)
    totals.buckets = [(bound, int(hist.get(repr(bound), 0))) for bound in JOB_SECONDS_BUCKETS]
    totals.count, totals.sum = int(hist.get("count", 0)), float(hist.get("sum", 0.0))
    return totals
