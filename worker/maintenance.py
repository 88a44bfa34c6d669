"""Periodic upkeep inside each worker: follow the active breed model every second; reap stuck jobs and
expire old ones. A Redis lock makes one worker of many do each reap or expiry round, so
docker-compose needs no extra scheduler service."""
from __future__ import annotations

import logging
import threading
import time

import redis
from sqlalchemy.orm import sessionmaker

from shared import model_versions
from shared.db import session_scope
from shared.reaper import Reaper
from shared.retention import expire
from shared.settings import Settings
from shared.storage import open_image_store
from worker.model_holder import ModelHolder

log = logging.getLogger(__name__)
GC_EVERY_S = 3600
FOLLOW_EVERY_S = 1.0  # how soon running workers serve a newly activated model


class Maintenance:
    def __init__(self, settings: Settings, interval_s: float, holder: ModelHolder | None = None) -> None:
        self.settings = settings
        self.interval_s = interval_s
        self.holder = holder
        self.reaper = Reaper(settings)
        self.redis = redis.Redis.from_url(settings.require_broker(), socket_connect_timeout=2, socket_timeout=5)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="maintenance", daemon=True)

    def start(self) -> None:
        """Serve the active version from the first job on, then keep following it."""
        self._guarded(self._follow)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _turn(self, name: str, every_s: float) -> bool:
        """True for the one worker of this deployment (its queue) that takes this round of `name`."""
        key = f"{self.settings.queue}:maintenance:{name}"
        return bool(self.redis.set(key, "1", nx=True, ex=max(1, int(every_s))))

    def _follow(self) -> None:
        if self.holder is not None:
            follow_active_version(self.holder, self.reaper.sessions)

    def run_once(self) -> None:
        if self._turn("reap", self.interval_s):
            self.reaper.run_once()
        if self._turn("gc", GC_EVERY_S):
            with session_scope(self.reaper.sessions) as session:
                gone = expire(session, open_image_store(self.settings), self.settings.retention_days)
            if gone.jobs:
                log.info("expired %d old job(s) and %d image(s)", gone.jobs, gone.images)

    def _loop(self) -> None:
        next_round = time.monotonic() + self.interval_s
        while not self._stop.wait(min(FOLLOW_EVERY_S, self.interval_s)):
            self._guarded(self._follow)
            if time.monotonic() >= next_round:
                next_round = time.monotonic() + self.interval_s
                self._guarded(self.run_once)

    @staticmethod
    def _guarded(step) -> None:
        try:
            step()
        except Exception as exc:  # Redis or the database away: try again next round
            log.warning("maintenance step %s skipped: %s", step.__name__, exc)


def follow_active_version(holder: ModelHolder, sessions: sessionmaker) -> None:
    """Read the active version here, off the inference thread, and let the holder swap to it."""
    with session_scope(sessions) as session:
        row = model_versions.active_version(session)
        version, backbone = (row.name, row.backbone) if row else (None, None)
    holder.follow(version, backbone)
