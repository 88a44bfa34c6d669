"""Accept a job: validate, store the image, commit the row, THEN enqueue its id by task name."""
from __future__ import annotations

import logging

from flask import current_app

from shared import jobs, logs
from shared.celeryconf import TASK_CLASSIFY
from shared.tables import Job
from web.database import db
from web.errors import ApiError
from web.metrics import JOBS_SUBMITTED
from web.queue import BrokerUnavailable, enqueue
from web.ratelimit import check_submission
from web.uploads import read_upload

log = logging.getLogger(__name__)


def submit(owner_id: int | None, task_name: str = TASK_CLASSIFY) -> Job:
    settings = current_app.config["SETTINGS"]
    check_submission()
    session = db()
    if jobs.count_unfinished(session) >= settings.max_queued_jobs:
        raise ApiError(503, "queue_full",
                       f"{settings.max_queued_jobs} jobs are already waiting; try again shortly.", {"Retry-After": "10"})
    upload = read_upload(settings.max_upload_bytes, settings.max_pixels)
    store = current_app.extensions["image_store"]
    sha256, _ = store.put(upload.data, upload.info.extension)
    job = jobs.create_job(session, owner_id=owner_id, sha256=sha256, size=len(upload.data), fmt=upload.info.format,
                          width=upload.info.width, height=upload.info.height, filename=upload.filename)
    session.commit()
    logs.job_id_var.set(job.id)
    try:
        enqueue(task_name, job.id)
    except BrokerUnavailable:
        # Not accepted after all: take back the row (and the image if nobody else uses it).
        session.delete(job)
        session.commit()
        if not session.query(Job.id).filter(Job.image_sha256 == sha256).first():
            store.delete(sha256, upload.info.extension)
        raise
    jobs.mark_enqueued(session, job.id)
    session.commit()
    JOBS_SUBMITTED.inc()
    log.info("job %s accepted (%s, %d bytes)", job.id, upload.info.format, len(upload.data))
    return job
