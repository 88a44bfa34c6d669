"""Periodic upkeep inside each worker: a liveness heartbeat, follow the active breed model every
second, requeue the jobs of dead workers, reap stuck jobs, expire old ones. A Redis lock makes one
worker of many do each round, so docker-compose needs no extra scheduler service."""
from __future__ import annotations

import logging
import threading
import time

import redis
from sqlalchemy.orm import sessionmaker

from shared import model_versions
from shared.db import session_scope
from shared.settings import Settings
from shared.storage import open_image_store
from shared.tables import utcnow
from worker.heartbeat import Heartbeat
from worker.model_holder import ModelHolder
from worker.reaper import SETTLE_S, Reaper
from worker.retention import expire

log = logging.getLogger(__name__)
GC_EVERY_S = 3600
FOLLOW_EVERY_S = 1.0  # how soon running workers serve a newly activated model


class Maintenance:
    def __init__(self, settings: Settings, interval_s: float, holder: ModelHolder | None = None,
                 sessions: sessionmaker | None = None) -> None:
        self.settings = settings
        self.interval_s = interval_s
        self.holder = holder
        # Dead workers are noticed a few times per heartbeat lifetime, whatever the reap interval.
        self.orphan_check_s = max(1.0, min(interval_s, settings.heartbeat_ttl_s / 5))
        self.reaper = Reaper(settings, sessions)
        self.redis = redis.Redis.from_url(settings.require_broker(), socket_connect_timeout=2, socket_timeout=5)
        self.heartbeat: Heartbeat | None = None
        self._lost_check_at: float | None = None  # after a take-back: one more look for lost messages
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="maintenance", daemon=True)

    def take_back(self, node: str) -> None:
        """Before this process runs anything: requeue what an earlier process of this node left running."""
        started = utcnow()
        try:
            self.reaper.take_back(node, started)
        except Exception as exc:  # the reaper's other rounds get them later
            log.warning("could not take back %s's earlier jobs: %s", node, exc)
        self._lost_check_at = time.monotonic() + SETTLE_S + 1  # and look again once fresh messages settle

    def start(self, node: str | None = None) -> None:
        """Serve the active version from the first job on, beat for this node, then keep at it."""
        self._guarded(self._follow)
        if node:
            self.heartbeat = Heartbeat(self.redis, self.settings.queue, node, self.settings.heartbeat_ttl_s)
            self.heartbeat.start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self.heartbeat:
            self.heartbeat.stop()

    def _turn(self, name: str, every_s: float) -> bool:
        """True for the one worker of this deployment (its queue) that takes this round of `name`."""
        key = f"{self.settings.queue}:maintenance:{name}"
        return bool(self.redis.set(key, "1", nx=True, px=max(1, int(every_s * 1000))))

    def _follow(self) -> None:
        if self.holder is not None:
            follow_active_version(self.holder, self.reaper.sessions)

    def run_once(self) -> None:
        if self._turn("orphans", self.orphan_check_s):
            self.reaper.reap_orphans()
        if self._turn("deadlines", self.orphan_check_s):  # Cancel-After: a job past it ends within seconds
            self.reaper.cancel_past_deadline()
        if self._turn("reap", self.interval_s):
            self.reaper.run_once()
        if self._turn("gc", GC_EVERY_S):
            with session_scope(self.reaper.sessions) as session:
                gone = expire(session, open_image_store(self.settings), self.settings.retention_days)
            if gone.jobs:
                log.info("expired %d old job(s) and %d image(s)", gone.jobs, gone.images)

    def _loop(self) -> None:
        next_round = time.monotonic() + self.orphan_check_s
        while not self._stop.wait(min(FOLLOW_EVERY_S, self.orphan_check_s)):
            self._guarded(self._follow)
            if self._lost_check_at is not None and time.monotonic() >= self._lost_check_at:
                self._lost_check_at = None
                self._guarded(self.reaper.resend_lost)
            if time.monotonic() >= next_round:  # each round's own Redis lock sets how often it really runs
                next_round = time.monotonic() + self.orphan_check_s
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
