"""The floor under the no-op pipeline: a bare Celery task on the same broker, same worker options.

`measure` starts a worker of its own (a subprocess: `python -m cli.bench.bare_celery`) on a
throwaway queue, publishes `count` messages and times them until the last one has run. The task
only counts itself in Redis, so what is timed is Celery and the broker, nothing of ours.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

TASK = "dogbreed.bench.bare"


def _app(broker: str, queue: str):
    from shared.celeryconf import make_celery
    from shared.settings import Settings

    return make_celery(Settings(broker_url=broker, queue=queue), name="dogbreed-bench")


def _counter_key(queue: str) -> str:
    return f"{queue}:done"


def measure(broker: str, concurrency: int, count: int, timeout_s: float = 120) -> float:
    """Bare tasks per second: first publish to last task done, with a worker like the service's."""
    import redis

    queue, node = f"bench-bare-{uuid.uuid4().hex[:8]}", f"bench-bare-{uuid.uuid4().hex[:6]}@localhost"
    app = _app(broker, queue)
    counter = redis.Redis.from_url(broker)
    worker = subprocess.Popen([sys.executable, "-m", "cli.bench.bare_celery", broker, queue, str(concurrency), node],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        _wait_ready(app, worker, node, timeout_s)
        start = time.perf_counter()
        for _ in range(count):
            app.send_task(TASK, queue=queue)
        deadline = time.monotonic() + timeout_s
        while int(counter.get(_counter_key(queue)) or 0) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"bare Celery worker ran {counter.get(_counter_key(queue))} of {count} tasks")
            time.sleep(0.002)
        return count / (time.perf_counter() - start)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        counter.delete(_counter_key(queue), queue)
        counter.close()
        app.close()


def _wait_ready(app, worker: subprocess.Popen, node: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"bare Celery worker exited: {worker.stderr.read().decode(errors='replace')[-2000:]}")
        if app.control.ping(destination=[node], timeout=0.5):
            return
    raise TimeoutError("bare Celery worker did not answer a ping")


def main(broker: str, queue: str, concurrency: str, node: str) -> None:
    """The worker side: the service's Celery settings and pool, one task that only counts itself."""
    import redis

    app = _app(broker, queue)
    counter = redis.Redis.from_url(broker)
    key = _counter_key(queue)

    @app.task(name=TASK, acks_late=True, ignore_result=True)
    def bare() -> None:
        counter.incr(key)

    app.worker_main(["worker", "--pool", "threads", "--concurrency", concurrency, "--hostname", node,
                     "--queues", queue, "--loglevel", "WARNING", "--without-mingle", "--without-gossip"])


if __name__ == "__main__":
    main(*sys.argv[1:5])
