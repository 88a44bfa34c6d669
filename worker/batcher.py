"""Dynamic batching: task threads hand in one item each; one inference thread runs them together.

A batch closes when it holds `max_batch` items or when `max_delay_s` has passed since its first
item arrived, as Triton and TensorFlow Serving do; and at once when no caller has announced an
item still on its way (`expect()`), so a lone job never waits for company that is not coming.
Each caller waits on its own Future.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from typing import Any, Callable, Sequence

log = logging.getLogger(__name__)


class Batcher:
    def __init__(self, run: Callable[[list[Any]], Sequence[Any]], max_batch: int, max_delay_s: float,
                 name: str = "batcher") -> None:
        self._run = run
        self.max_batch = max(1, max_batch)
        self.max_delay_s = max(0.0, max_delay_s)
        self._queue: queue.Queue[tuple[Any, Future] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()
        self._expected = 0
        self._lock = threading.Lock()

    def expect(self) -> "Ticket":
        """Announce an item being prepared (decoding); the batch being gathered may wait for it."""
        with self._lock:
            self._expected += 1
        return Ticket(self)

    def _arrived(self) -> None:
        with self._lock:
            self._expected -= 1

    def submit(self, item: Any, ticket: "Ticket | None" = None) -> Future:
        future: Future = Future()
        self._queue.put((item, future))
        if ticket is not None:
            ticket.close()
        return future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _gather(self, first: tuple[Any, Future]) -> tuple[list[tuple[Any, Future]], bool]:
        batch, deadline = [first], time.monotonic() + self.max_delay_s
        while len(batch) < self.max_batch:
            timeout = deadline - time.monotonic()
            try:
                nxt = self._queue.get(timeout=min(timeout, 0.002)) if timeout > 0 else self._queue.get_nowait()
            except queue.Empty:
                if timeout <= 0 or self._expected <= 0:
                    break
                continue
            if nxt is None:
                return batch, True
            batch.append(nxt)
        return batch, False

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, stop = self._gather(first)
            items = [item for item, _ in batch]
            try:
                outputs = self._run(items)
                if len(outputs) != len(items):
                    raise RuntimeError(f"batch of {len(items)} gave {len(outputs)} outputs")
            except BaseException as exc:  # every waiter hears about it; the loop goes on
                log.exception("batch of %d failed", len(items))
                for _, future in batch:
                    future.set_exception(exc)
            else:
                for (_, future), out in zip(batch, outputs):
                    future.set_result(out)
            if stop:
                return


class Ticket:
    """One announced item; closing it twice is harmless (error paths close it too)."""

    def __init__(self, batcher: Batcher) -> None:
        self._batcher, self._open = batcher, True

    def close(self) -> None:
        if self._open:
            self._open = False
            self._batcher._arrived()
