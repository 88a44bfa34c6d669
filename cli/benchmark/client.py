"""The service as a client sees it: submit over the JSON API, poll to the result, time each job."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

import requests

DONE = ("succeeded", "failed")


class BenchError(RuntimeError):
    """The service refused or lost a job; the message says what to fix."""


@dataclass(frozen=True)
class Poll:
    """Polling backs off, so that many waiting clients do not take the CPU the service needs."""

    first_s: float = 0.05
    factor: float = 1.5
    max_s: float = 1.0  # at 32 clients and seconds of latency, 0.25 s polling took ~30% of a core here

    def intervals(self):
        wait = self.first_s
        while True:
            yield wait
            wait = min(self.max_s, wait * self.factor)


TIGHT = Poll(first_s=0.002, factor=1.0, max_s=0.002)  # one job alone: latency to the millisecond


@dataclass
class Timed:
    seconds: float
    job: dict[str, Any]
    polls: int = 0

    @property
    def server_seconds(self) -> float:
        """created_at -> finished_at, as the service recorded it: no upload, no polling lag."""
        start, end = (datetime.fromisoformat(self.job[k].replace("Z", "+00:00")) for k in ("created_at", "finished_at"))
        return (end - start).total_seconds()


@dataclass
class Phase:
    wall_s: float
    timed: list[Timed] = field(default_factory=list)

    @property
    def jobs_per_s(self) -> float:
        return len(self.timed) / self.wall_s

    @property
    def polls_per_job(self) -> float:
        return sum(t.polls for t in self.timed) / len(self.timed)

    def failed(self) -> list[dict[str, Any]]:
        return [t.job for t in self.timed if t.job["status"] != "succeeded"]


class Client:
    def __init__(self, url: str, api_key: str | None = None, timeout_s: float = 300) -> None:
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.timeout_s = timeout_s
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            if self.api_key:
                session.headers["Authorization"] = f"Bearer {self.api_key}"
        return session

    def submit(self, image: bytes, pipeline: str = "classify") -> str:
        response = self._session().post(f"{self.url}/api/v1/jobs", files={"image": ("bench.jpg", image, "image/jpeg")},
                                        data={"pipeline": pipeline}, timeout=60)
        if response.status_code == 429:
            raise BenchError(f"the service limits submissions ({_error(response)}); a benchmark would time the "
                             "limiter: raise DOGBREED_RATE_LIMIT_PER_MINUTE (0 turns it off) or send fewer --jobs")
        if response.status_code != 202:
            raise BenchError(f"POST /api/v1/jobs answered {response.status_code}: {_error(response)}")
        return response.json()["url"]

    def wait(self, job_url: str, poll: Poll) -> tuple[dict[str, Any], int]:
        """The finished job, and how many GETs it took."""
        deadline = time.monotonic() + self.timeout_s
        for polls, interval in enumerate(poll.intervals(), 1):
            time.sleep(interval)
            response = self._session().get(job_url, timeout=30)
            if response.status_code != 200:
                raise BenchError(f"GET {job_url} answered {response.status_code}: {_error(response)}")
            job = response.json()
            if job["status"] in DONE:
                return job, polls
            if time.monotonic() > deadline:
                raise BenchError(f"{job_url} still {job['status']} after {self.timeout_s:.0f}s; is a worker running?")
        raise AssertionError("unreachable")

    def run_one(self, image: bytes, pipeline: str = "classify", poll: Poll = Poll()) -> Timed:
        start = time.perf_counter()
        job, polls = self.wait(self.submit(image, pipeline), poll)
        return Timed(time.perf_counter() - start, job, polls)

    def run_many(self, images: list[bytes], concurrency: int, pipeline: str = "classify",
                 progress: Callable[[int], None] | None = None, poll: Poll = Poll()) -> Phase:
        """Closed loop: `concurrency` clients, each submitting its next image when its last one is done."""
        done = 0
        lock = threading.Lock()

        def one(image: bytes) -> Timed:
            nonlocal done
            timed = self.run_one(image, pipeline, poll)
            with lock:
                done += 1
                if progress:
                    progress(done)
            return timed

        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="bench-client") as pool:
            timed = list(pool.map(one, images))
        return Phase(time.perf_counter() - start, timed)


def _error(response: requests.Response) -> str:
    try:
        error = response.json()["error"]
        return f"{error['code']}: {error['message']}"
    except Exception:
        return response.text[:200]
