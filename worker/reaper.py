"""Put stuck jobs back on the queue; fail the ones that keep dying. The database is the truth.

Three ways a job loses its message, three ways back:
- its worker died (SIGKILL, out of memory): that node's heartbeat expires within seconds and
  `reap_orphans` requeues its `running` jobs;
- the same node restarts: `take_back` requeues what the previous process held, at start;
- Redis restarted or lost its data (worker/broker_epoch.py): no node is taken for dead before Redis
  has been up a heartbeat TTL, and from RECONCILE_AFTER_S on, for a TTL, each round sends again the
  queued jobs whose message is nowhere in Redis;
- anything else: a job queued or running past DOGBREED_JOB_DEADLINE_S.
A job is enqueued again only within DOGBREED_MAX_ATTEMPTS, and is failed with the reason after.
Tasks are idempotent (conditional transitions), so a duplicate message is harmless. The same goes
for a webhook whose job ended long ago but whose delivery never started. Jobs past a caller's
Cancel-After deadline are canceled here too, every few seconds (Maintenance)."""
from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta

import redis
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from shared import job_events, job_metrics, jobs
from shared.celeryconf import (
    TASK_ALBUM_WEBHOOK,
    TASK_WEBHOOK,
    job_lane,
    lane_queue,
    lane_queues,
    make_celery,
    task_for,
    webhook_queue,
)
from shared.db import make_engine, make_sessionmaker, session_scope
from shared.redis_keys import alive_nodes, webhook_inflight_key
from shared.settings import Settings
from shared.tables import Job, utcnow
from worker import broker_epoch, heartbeat

log = logging.getLogger("dogbreed.reaper")
SETTLE_S = 5.0  # a message this fresh may be between the Redis list and a live worker's records
# After Redis comes back, live workers first reconnect, beat, and record what they hold (a message
# read just before the restart included); a message they run would otherwise be sent a second time.
RECONCILE_AFTER_S = SETTLE_S


class Reaper:
    def __init__(self, settings: Settings, sessions: sessionmaker | None = None) -> None:
        """`sessions`: a worker passes its own, so one process keeps one connection pool."""
        self.settings = settings
        self.sessions = sessions or make_sessionmaker(make_engine(settings.database_url))
        self.celery = make_celery(settings, name="dogbreed-reaper")
        self.redis = redis.Redis.from_url(settings.require_broker(), socket_connect_timeout=2, socket_timeout=5)
        # What it requeues or fails wakes web's waiters, from a worker or from `dogbreed reap` alike.
        event.listen(self.sessions, "after_commit", lambda session: job_events.publish(session, self.redis, settings.queue))

    def _resend(self, session: Session, job: Job, counts: dict[str, int]) -> None:
        """Enqueue a job again, or fail it when it has used its attempts; committed one job at a time."""
        if job.attempts >= self.settings.max_attempts:
            gave_up = jobs.give_up(session, job.id, job.attempts)
            session.commit()
            counts["failed"] += 1
            if gave_up:  # counted for the web's /metrics, once committed
                job_metrics.record(self.redis, self.settings.queue, [
                    job_metrics.ended(jobs.FAILED, None, jobs.as_utc(job.created_at), utcnow())])
            return
        # Queued before the message goes: a worker that gets it at once must find the job claimable.
        jobs.requeue(session, job.id)
        session.commit()
        # Into its own lane: a single upload stays ahead of album images after a worker died.
        self.celery.send_task(task_for(job.pipeline), args=[job.id], task_id=job.id,
                              queue=lane_queue(self.settings, job_lane(job.lane, job.album_id)))
        counts["requeued"] += 1

    def cancel_past_deadline(self) -> int:
        """Jobs past their Cancel-After deadline end `canceled` (deadline_exceeded) here, even when no
        worker would pick them up; a worker claiming one skips it the same way (jobs.claim_chunk).
        The commit announces their webhooks like any other end."""
        with session_scope(self.sessions) as session:
            ended = jobs.cancel_past_deadline(session)
        if ended:
            log.info("reaper: %d job(s) canceled at their Cancel-After deadline", len(ended))
        return len(ended)

    def run_once(self) -> dict[str, int]:
        counts = {"requeued": 0, "failed": 0, "deadline_canceled": self.cancel_past_deadline()}
        with session_scope(self.sessions) as session:
            stale = jobs.stale_jobs(session, self.settings.job_deadline_s)
            # A queued job whose message (its own or its chunk's) still waits keeps it: no second message.
            waiting = (heartbeat.messages_in_broker(self.redis, lane_queues(self.settings))
                       if any(job.status == jobs.QUEUED for job in stale) else set())
            for job in stale:
                if job.status == jobs.QUEUED and job.id in waiting:
                    continue
                self._resend(session, job, counts)
        counts["webhooks"] = 0
        with session_scope(self.sessions) as session:
            unsent = [(TASK_WEBHOOK, "job", job_id, [job_id])
                      for job_id in jobs.unsent_webhooks(session, self.settings.job_deadline_s)]
            unsent += [(TASK_ALBUM_WEBHOOK, "album", album_id, [album_id, "completed"])
                       for album_id in jobs.unsent_album_webhooks(session, self.settings.job_deadline_s)]
        for task, kind, thing_id, args in unsent:
            if self.redis.exists(webhook_inflight_key(self.settings.queue, kind, thing_id, "completed")):
                continue  # its first attempt is being posted right now: no second copy
            self.celery.send_task(task, args=args, queue=webhook_queue(self.settings))
            counts["webhooks"] += 1
        if any(counts.values()):
            log.warning("reaper: re-enqueued %d stuck job(s) and %d webhook(s), failed %d", counts["requeued"],
                        counts["webhooks"], counts["failed"])
        return counts

    def reap_orphans(self) -> dict[str, int]:
        """Requeue the jobs of nodes whose heartbeat is gone: those they ran, held, or lost in delivery.

        The heartbeats are read AFTER the rows and sets: a node that claimed or received a job had
        its heartbeat before, so a node starting meanwhile is never taken for dead. A heartbeat counts
        as missing only once Redis has been up a whole TTL; for a TTL after Redis came back (or lost its
        data) each round also sends again the queued jobs whose message is nowhere.
        """
        ttl_s = self.settings.heartbeat_ttl_s
        epoch = broker_epoch.look(self.redis, self.settings.queue)
        if epoch.new:
            log.info("reaper: a new Redis epoch (run %s, up %.0f s): jobs whose message is gone are sent again "
                     "from %.0f s on", epoch.run_id or "?", epoch.up_s, RECONCILE_AFTER_S)
        reconciling = RECONCILE_AFTER_S <= epoch.age_s < RECONCILE_AFTER_S + ttl_s
        counts = self._reconcile() if reconciling else {"requeued": 0, "failed": 0}
        if epoch.up_s < ttl_s:
            return counts
        queue = self.settings.queue
        with session_scope(self.sessions) as session:
            running = jobs.running_jobs(session)
            suspects = heartbeat.nodes_holding(self.redis, queue) | heartbeat.known_nodes(self.redis, queue)
            if not running and not suspects:
                return counts
            alive = alive_nodes(self.redis, queue)
            resent = set()
            for job in running:
                if job.node not in alive:
                    self._resend(session, job, counts)
                    resent.add(job.id)
            dead = suspects - alive
            for node in dead:
                self._resend_held(session, node, counts, resent)
            if dead:
                self._resend_lost(session, alive, counts)
                for node in dead:
                    heartbeat.forget_node(self.redis, queue, node)
        if any(counts.values()):
            log.warning("reaper: re-enqueued %d job(s) of dead workers, failed %d", counts["requeued"], counts["failed"])
        return counts

    def _resend_held(self, session: Session, node: str, counts: dict[str, int], resent: set[str]) -> None:
        """The jobs whose messages (single or chunk) a dead node received but never started. `resent`:
        its running ones, just requeued and so queued now too; a second message would run them twice."""
        held = heartbeat.held_by(self.redis, self.settings.queue, node)
        for job in jobs.queued_among(session, held - resent):
            self._resend(session, job, counts)
        heartbeat.forget(self.redis, self.settings.queue, node, held)

    def _reconcile(self) -> dict[str, int]:
        """Redis restarted, perhaps without its data: the queued jobs whose message is nowhere in it
        (not waiting, not delivered to anyone, not held by a live node) go out again. Running jobs
        stay: their nodes run them from memory, and a node still gone after the TTL is reaped then."""
        counts = {"requeued": 0, "failed": 0}
        with session_scope(self.sessions) as session:
            self._resend_lost(session, alive_nodes(self.redis, self.settings.queue), counts, math.inf)
        if any(counts.values()):
            log.warning("reaper: re-enqueued %d job(s) whose message Redis lost, failed %d", counts["requeued"],
                        counts["failed"])
        return counts

    def _resend_lost(self, session: Session, alive: set[str], counts: dict[str, int],
                     delivered_within_s: float = SETTLE_S) -> None:
        """After a worker died: queued jobs whose message is nowhere in Redis any more. A SIGKILL
        between Redis handing a message over and kombu recording it loses that message for good.
        `delivered_within_s`: how long a message handed to a worker still counts as somewhere."""
        queue = self.settings.queue
        cutoff = utcnow() - timedelta(seconds=SETTLE_S)
        candidates = jobs.queued_before(session, cutoff)
        if not candidates:
            return
        live_held = set().union(*(heartbeat.held_by(self.redis, queue, node) for node in alive))
        present = heartbeat.messages_in_broker(self.redis, lane_queues(self.settings), delivered_within_s)
        for job in candidates:
            if job.id not in present and job.id not in live_held:
                self._resend(session, job, counts)

    def resend_lost(self) -> dict[str, int]:
        """Once more, a little after a node restarted: messages lost in its kill that were still too
        fresh (SETTLE_S) for `take_back` to judge. Once the node is alive again nothing else would."""
        counts = {"requeued": 0, "failed": 0}
        with session_scope(self.sessions) as session:
            self._resend_lost(session, alive_nodes(self.redis, self.settings.queue), counts)
        if any(counts.values()):
            log.warning("reaper: re-enqueued %d job(s) whose message was lost, failed %d", counts["requeued"],
                        counts["failed"])
        return counts

    def take_back(self, node: str, started_at: datetime) -> dict[str, int]:
        """At a worker's start: the jobs its previous process (same node name) was running, held,
        or lost in delivery."""
        counts = {"requeued": 0, "failed": 0}
        with session_scope(self.sessions) as session:
            resent = set()
            for job in jobs.orphans_of(session, node, started_at):
                self._resend(session, job, counts)
                resent.add(job.id)
            self._resend_held(session, node, counts, resent)
            if node in heartbeat.known_nodes(self.redis, self.settings.queue):  # it did not stop cleanly
                self._resend_lost(session, alive_nodes(self.redis, self.settings.queue), counts)
        if any(counts.values()):
            log.warning("%s took back %d job(s) its previous process held, failed %d", node, counts["requeued"],
                        counts["failed"])
        return counts
