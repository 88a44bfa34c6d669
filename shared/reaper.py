"""Put stuck jobs back on the queue; fail the ones that keep dying. The database is the truth:
a job queued or running past the deadline lost its message (Redis restarted empty, a worker
was killed), so it is enqueued again. Tasks are idempotent, so a duplicate message is harmless.
The same goes for a webhook whose job ended long ago but whose delivery never started."""
from __future__ import annotations

import logging

from shared import jobs
from shared.celeryconf import TASK_CLASSIFY, TASK_WEBHOOK, make_celery
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
        with session_scope(self.sessions) as session:
            for job in jobs.stale_jobs(session, self.settings.job_deadline_s):
                if job.attempts >= self.settings.max_attempts:
                    jobs.give_up(session, job.id, job.attempts)
                    failed += 1
                    continue
                self.celery.send_task(TASK_CLASSIFY, args=[job.id], queue=self.settings.queue)
                jobs.requeue(session, job.id)
                session.commit()
                requeued += 1
        webhooks = 0
        with session_scope(self.sessions) as session:
            for job_id in jobs.unsent_webhooks(session, self.settings.job_deadline_s):
                self.celery.send_task(TASK_WEBHOOK, args=[job_id], queue=self.settings.queue)
                webhooks += 1
        if requeued or failed or webhooks:
            log.warning("reaper: re-enqueued %d stuck job(s) and %d webhook(s), failed %d", requeued, webhooks, failed)
        return {"requeued": requeued, "failed": failed, "webhooks": webhooks}
