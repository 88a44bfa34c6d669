"""gunicorn settings `dogbreed web` loads (`--config python:web.gunicorn_conf`)."""
import os


def child_exit(server, worker) -> None:
    """A dead worker's live gauges must not be summed any more (prometheus_client multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
