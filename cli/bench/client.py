"""The service as a benchmark sees it: cli.client's Client, timing each job from submit to result."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from cli import client as api
from cli.client import Poll
from shared.errors import FixedCodeError

TIGHT = Poll(first_s=0.002, factor=1.0, max_s=0.002)  # one job alone: latency to the millisecond


class BenchError(FixedCodeError, RuntimeError):
    """The service refused or lost a job; the message says what to fix."""

    code = "bench_failed"


DEFAULT_POLL = Poll()

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


class Client(api.Client):
    def submit_waiting(self, image: bytes, pipeline: str = "classify") -> dict[str, Any]:
        """Sync mode: the job comes back ended in the submit's own answer (no poll), unless it takes
        longer than the wait or the service holds as many waiters as it may."""
        try:
            return self.submit(image, "bench.jpg", pipeline, wait_s=api.LONG_POLL_S)
        except api.ServiceError as exc:
            if exc.status == 429:
                raise BenchError(f"the service limits submissions ({exc}); a benchmark would time the limiter: raise "
                                 "DOGBREED_RATE_LIMIT_PER_MINUTE (0 turns it off) or send fewer --jobs") from None
            raise BenchError(str(exc)) from None

    def run_one(self, image: bytes, pipeline: str = "classify", poll: Poll = DEFAULT_POLL) -> Timed:
        start = time.perf_counter()
        try:
            job, polls = self.wait(self.submit_waiting(image, pipeline), poll)
        except api.ServiceError as exc:
            raise BenchError(str(exc)) from None
        return Timed(time.perf_counter() - start, job, polls)

    def run_many(self, images: list[bytes], concurrency: int, pipeline: str = "classify",
                 progress: Callable[[int], None] | None = None, poll: Poll = DEFAULT_POLL) -> Phase:
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


ALBUM_POLL = Poll(first_s=0.02, factor=1.5, max_s=0.25)  # an album's GET lists every job: poll it less often


@dataclass
class AlbumPhase:
    """Albums sent closed loop; `images_per_s` counts the images, the figure to set against a floor."""

    wall_s: float
    albums: list[dict[str, Any]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)  # submit to done, per album

    @property
    def images(self) -> int:
        return sum(len(album["jobs"]) for album in self.albums)

    @property
    def images_per_s(self) -> float:
        return self.images / self.wall_s

    def failed(self) -> list[dict[str, Any]]:
        return [job for album in self.albums for job in album["jobs"] if job.get("status") != "succeeded"]


def _submit_album(client: api.Client, images: list[bytes]) -> dict[str, Any]:
    try:
        return client.submit_album([(f"bench{i}.jpg", data) for i, data in enumerate(images)])
    except api.ServiceError as exc:
        if exc.status == 429:
            raise BenchError(f"the service limits submissions ({exc}); raise DOGBREED_RATE_LIMIT_PER_MINUTE "
                             "(0 turns it off) or send fewer --jobs") from None
        raise BenchError(str(exc)) from None


def run_albums(client: api.Client, images: list[bytes], size: int, concurrency: int,
               progress: Callable[[int], None] | None = None) -> AlbumPhase:
    """Every image, as albums of `size` (the last one may be smaller), `concurrency` albums in flight;
    `progress` hears the albums done so far."""
    groups = [images[i:i + size] for i in range(0, len(images), size)]
    done = 0
    lock = threading.Lock()

    def one(group: list[bytes]) -> tuple[float, dict[str, Any]]:
        nonlocal done
        start = time.perf_counter()
        submitted = _submit_album(client, group)
        try:
            album = client.wait_album(submitted, ALBUM_POLL)
        except api.ServiceError as exc:
            raise BenchError(str(exc)) from None
        with lock:
            done += 1
            if progress:
                progress(done)
        return time.perf_counter() - start, album

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="bench-album") as pool:
        results = list(pool.map(one, groups))
    return AlbumPhase(time.perf_counter() - start, [a for _, a in results], [s for s, _ in results])
