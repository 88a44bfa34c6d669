"""Periodic upkeep inside each worker: reap stuck jobs, expire old ones. A Redis lock makes one
worker of many do each round, so docker-compose needs no extra scheduler service."""
from __future__ import annotations

import logging
import threading
import time

import redis

from shared.db import session_scope
from shared.reaper import Reaper
from shared.retention import expire
from shared.settings import Settings
from shared.storage import ImageStore

log = logging.getLogger(__name__)
GC_EVERY_S = 3600


class Maintenance:
    def __init__(self, settings: Settings, interval_s: float) -> None:
        self.settings = settings
        self.interval_s = interval_s
        self.reaper = Reaper(settings)
        self.redis = redis.Redis.from_url(settings.require_broker(), socket_connect_timeout=2, socket_timeout=5)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="maintenance", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _turn(self, name: str, every_s: float) -> bool:
        """True for the one worker of this deployment (its queue) that takes this round of `name`."""
        key = f"{self.settings.queue}:maintenance:{name}"
        return bool(self.redis.set(key, "1", nx=True, ex=max(1, int(every_s))))

    def run_once(self) -> None:
        if self._turn("reap", self.interval_s):
            self.reaper.run_once()
        if self._turn("gc", GC_EVERY_S):
            with session_scope(self.reaper.sessions) as session:
                gone = expire(session, ImageStore(self.settings.storage_dir), self.settings.retention_days)
            if gone.jobs:
                log.info("expired %d old job(s) and %d image(s)", gone.jobs, gone.images)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.run_once()
            except Exception as exc:  # Redis or the database away: try again next round
                log.warning("maintenance round skipped: %s", exc)
