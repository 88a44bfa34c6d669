"""Each worker process's own Prometheus metrics, served on DOGBREED_METRICS_PORT (loopback unless
DOGBREED_METRICS_HOST says otherwise). One process per GPU, each with its own port (see cli/services.py)."""
from __future__ import annotations

import logging
import threading
import time
from collections import deque

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from shared.settings import Settings

log = logging.getLogger(__name__)
BUSY_WINDOW_S = 60.0

BATCH_SIZE = Histogram("dogbreed_batch_size", "Images per forward pass", buckets=(1, 2, 4, 8, 16, 32, 64, 128))
STAGE_SECONDS = Histogram("dogbreed_stage_seconds", "Time per stage: decode_wait, decode, queue and faces per image; model per "
                          "batch; write per bulk result commit", ["stage"],
                          buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
INFERENCE_IMAGES = Counter("dogbreed_inference_images", "Images run through the model")


class BusyRatio:
    """Share of the last minute the inference thread spent running batches (1.0: the GPU never waits)."""

    def __init__(self, window_s: float = BUSY_WINDOW_S) -> None:
        self.window_s = window_s
        self.started = time.monotonic()
        self._spans: deque[tuple[float, float]] = deque()  # (start, end) of each batch
        self._lock = threading.Lock()

    def add(self, start: float, end: float) -> None:
        with self._lock:
            self._spans.append((start, end))

    def ratio(self) -> float:
        now = time.monotonic()
        since = max(now - self.window_s, self.started)
        with self._lock:
            while self._spans and self._spans[0][1] < since:
                self._spans.popleft()
            busy = sum(end - max(start, since) for start, end in self._spans)
        return min(1.0, busy / max(now - since, 1e-6))


BUSY = BusyRatio()
Gauge("dogbreed_worker_busy_ratio", f"Share of the last {BUSY_WINDOW_S:.0f} s the inference thread ran batches"
      ).set_function(BUSY.ratio)


def serve(settings: Settings) -> int | None:
    """Start the /metrics server when DOGBREED_METRICS_PORT is set; returns the port."""
    if not settings.metrics_port:
        return None
    start_http_server(settings.metrics_port, addr=settings.metrics_host)
    log.info("metrics on http://%s:%d/metrics", settings.metrics_host, settings.metrics_port)
    return settings.metrics_port
