"""Put stuck jobs back on the queue; fail the ones that keep dying. The database is the truth:
a job queued or running past the deadline lost its message (Redis restarted empty, a worker
was killed), so it is enqueued again. Tasks are idempotent, so a duplicate message is harmless."""
from __future__ import annotations

import logging

from shared import job_metrics, jobs
from shared.celeryconf import TASK_CLASSIFY, make_celery
from shared.db import make_engine, make_sessionmaker, session_scope
from shared.settings import Settings

log = logging.getLogger("dogbreed.reaper")


class Reaper:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sessions = make_sessionmaker(make_engine(settings.database_url))
        self.celery = make_celery(settings, name="dogbreed-reaper")

    def run_once(self) -> dict[str, int]:
        requeued = failed = 0
        gave_up: list[job_metrics.Ended] = []
        with session_scope(self.sessions) as session:
            for job in jobs.stale_jobs(session, self.settings.job_deadline_s):
                if job.attempts >= self.settings.max_attempts:
                    if jobs.give_up(session, job.id, job.attempts):
                        gave_up.append(job_metrics.ended(jobs.FAILED, None, jobs.as_utc(job.created_at), jobs.utcnow()))
                    failed += 1
                    continue
                self.celery.send_task(TASK_CLASSIFY, args=[job.id], queue=self.settings.queue)
                jobs.requeue(session, job.id)
                session.commit()
                requeued += 1
        if gave_up:  # committed above; counted for the web's /metrics
            import redis

            client = redis.Redis.from_url(self.settings.require_broker(), socket_connect_timeout=2, socket_timeout=5)
            job_metrics.record(client, self.settings.queue, gave_up)
            client.close()
        if requeued or failed:
            log.warning("reaper: re-enqueued %d stuck job(s), failed %d", requeued, failed)
        return {"requeued": requeued, "failed": failed}
