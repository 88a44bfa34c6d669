"""Interactive first inside a worker: while a job of the interactive lane is in this process, album
work pauses at its next stage boundary (before an image's decode, before its answer), so the single
upload gets the cores instead of sharing them with an album's dozens of threads.

The pause is bounded (`max_wait_s`): a steady stream of single uploads slows an album, never stops it.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

MAX_WAIT_S = 1.0


class InteractiveFirst:
    def __init__(self, enabled: bool = True, max_wait_s: float = MAX_WAIT_S) -> None:
        self.enabled, self.max_wait_s = enabled, max_wait_s
        self._running = 0
        self._idle = threading.Condition()

    @contextmanager
    def turn(self) -> Iterator[None]:
        """An interactive job runs: album work waits for it at its stage boundaries."""
        with self._idle:
            self._running += 1
        try:
            yield
        finally:
            with self._idle:
                self._running -= 1
                if not self._running:
                    self._idle.notify_all()

    def wait_turn(self) -> None:
        """Album work calls this between stages: no wait when no interactive job is here."""
        if self.enabled and self._running:
            with self._idle:
                self._idle.wait_for(lambda: not self._running, timeout=self.max_wait_s)
