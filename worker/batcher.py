"""Dynamic batching: task threads hand in one item each; one inference thread runs them together.

A batch closes when it holds `max_batch` items or when `max_delay_s` has passed since its first
item arrived, as Triton and TensorFlow Serving do; and at once when no caller has announced an
item still on its way, so a lone job never waits for company that is not coming. A caller
announces its item for as long as it prepares it (`with batcher.announce() as announced:`);
the announcement ends when the item is submitted or the block is left, whichever comes first, so
no path can forget it. Each caller waits on its own Future. `submit_all` hands in a group that
stays together in one batch (a chunk's results: one transaction), unless it alone is bigger than one.
An `urgent` item (the interactive lane's, see shared.celeryconf.LANES) goes ahead of every item
still waiting, so a single upload joins the next batch, not the end of an album's line.
"""
from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

log = logging.getLogger(__name__)


class Batcher:
    def __init__(self, run: Callable[[list[Any]], Sequence[Any]], max_batch: int, max_delay_s: float,
                 name: str = "batcher") -> None:
        self._run = run
        self.max_batch = max(1, max_batch)
        self.max_delay_s = max(0.0, max_delay_s)
        # (rank, arrival, group): urgent groups first, then in arrival order; None (close) after all.
        self._queue: queue.PriorityQueue[tuple[int, int, list[tuple[Any, Future]] | None]] = queue.PriorityQueue()
        self._arrival = itertools.count()
        self._held: tuple[int, list[tuple[Any, Future]] | None] | None = None  # (rank, group) left for the next batch
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()
        self._expected = 0
        self._expected_urgent = 0
        self._lock = threading.Lock()

    @contextmanager
    def announce(self, urgent: bool = False) -> Iterator["Announcement"]:
        """An item is being prepared (decoded); the batch being gathered may wait for it (an urgent
        batch only for urgent items)."""
        with self._lock:
            self._expected += 1
            self._expected_urgent += urgent
        announced = Announcement(self, urgent)
        try:
            yield announced
        finally:
            announced.end()

    def _put(self, group: list[tuple[Any, Future]] | None, rank: int) -> None:
        self._queue.put((rank, next(self._arrival), group))

    def _get(self, timeout: float | None = None, block: bool = True) -> tuple[int, list[tuple[Any, Future]] | None]:
        rank, _, group = self._queue.get(block, timeout)
        return rank, group

    def submit(self, item: Any, announced: "Announcement | None" = None, urgent: bool = False) -> Future:
        future: Future = Future()
        self._put([(item, future)], 0 if urgent else 1)
        if announced is not None:
            announced.end()
        return future

    def submit_all(self, items: list[Any]) -> list[Future]:
        """Items that must run in the same batch: one entry in the queue, never split."""
        group: list[tuple[Any, Future]] = [(item, Future()) for item in items]
        if group:
            self._put(group, 1)
        return [future for _, future in group]

    def close(self) -> None:
        self._put(None, 2)
        self._thread.join(timeout=10)

    def _gather(self, rank: int, first: list[tuple[Any, Future]]) -> tuple[list[tuple[Any, Future]], bool]:
        """A batch that starts urgent takes (and waits for) urgent items only: a single upload's pass
        is not made longer by album images (on a CPU a pass costs about its size), while a burst of
        single uploads still shares passes."""
        batch, deadline = list(first), time.monotonic() + self.max_delay_s
        while len(batch) < self.max_batch:
            try:
                nxt_rank, nxt = self._get(block=False)  # whatever is already here joins at once
            except queue.Empty:
                timeout = deadline - time.monotonic()
                coming = self._expected_urgent if rank == 0 else self._expected
                if timeout <= 0 or coming <= 0:  # nothing on its way: do not wait for company
                    break
                try:
                    nxt_rank, nxt = self._get(timeout=min(timeout, 0.002))
                except queue.Empty:
                    continue
            if nxt is None:
                return batch, True
            # a group too big for what is left, or not urgent in an urgent batch: the next batch's
            if len(batch) + len(nxt) > self.max_batch or nxt_rank > rank:
                self._held = (nxt_rank, nxt)
                break
            batch.extend(nxt)
        return batch, False

    def _loop(self) -> None:
        while True:
            (rank, first), self._held = self._held or self._get(), None
            if first is None:
                return
            batch, stop = self._gather(rank, first)
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


class Announcement:
    """One announced item; ending it twice is harmless (submit ends it, then the with-block does)."""

    def __init__(self, batcher: Batcher, urgent: bool = False) -> None:
        self._batcher, self._open, self._urgent = batcher, True, urgent

    def end(self) -> None:
        if self._open:
            self._open = False
            with self._batcher._lock:
                self._batcher._expected -= 1
                self._batcher._expected_urgent -= self._urgent
