"""What the multi-host test does from inside a namespace (`ip netns exec web python -m tests.helpers.lab_client`):
it cannot reach the namespaces' addresses from its own. Settings come from DOGBREED_*; answers are JSON on stdout."""
from __future__ import annotations

import io
import json
import os
import sys
import time

import requests


def _retry(step, timeout_s: float, what: str):
    deadline, last = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        try:
            value = step()
            if value:
                return value
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(0.5)
    raise SystemExit(f"timed out after {timeout_s}s waiting for {what} (last error: {last})")


def create_bucket(bucket: str) -> dict:
    from shared.s3 import make_client
    from shared.settings import Settings

    client = make_client(Settings.from_env().s3_endpoint_url)
    return _retry(lambda: client.create_bucket(Bucket=bucket) and {"bucket": bucket}, 60, "the S3 server")


def wait_web(url: str) -> dict:
    return _retry(lambda: requests.get(f"{url}/readyz", timeout=2).status_code == 200 and {"ready": url}, 120,
                  "the web app")


def wait_workers(count: str) -> dict:
    from shared.celeryconf import make_celery
    from shared.settings import Settings

    app = make_celery(Settings.from_env(), name="lab-probe")

    def nodes():
        found = sorted(name for reply in app.control.ping(timeout=1.0) for name in reply)
        return found if len(found) >= int(count) else None

    return {"workers": _retry(nodes, 240, f"{count} workers to answer a ping")}


def submit(url: str, count: str) -> dict:
    from tests.helpers import images as make

    ids = []
    for i in range(int(count)):
        data = make.jpeg(160, 120, seed=100 + i + int(time.time()) % 1000)
        answer = requests.post(f"{url}/api/v1/jobs", files={"image": (f"dog{i}.jpg", io.BytesIO(data), "image/jpeg")},
                               headers={"Authorization": f"Bearer {os.environ['DOGBREED_API_KEY']}"}, timeout=30)
        answer.raise_for_status()
        ids.append(answer.json()["id"])
    return {"ids": ids}


def wait_jobs(*ids: str) -> dict:
    """Each job's status, worker node and model version, once all have ended (read from the database)."""
    from sqlalchemy import select

    from shared.db import make_engine, make_sessionmaker, session_scope
    from shared.settings import Settings
    from shared.tables import Job

    sessions = make_sessionmaker(make_engine(Settings.from_env().database_url))

    def ended():
        with session_scope(sessions) as session:
            rows = list(session.execute(select(Job.id, Job.status, Job.node, Job.result, Job.error_message)
                                        .where(Job.id.in_(ids))))
        if len(rows) < len(ids) or any(r.status not in ("succeeded", "failed") for r in rows):
            return None
        return [{"id": r.id, "status": r.status, "node": r.node, "error": r.error_message,
                 "model_version": (r.result or {}).get("model", {}).get("model_version")} for r in rows]

    return {"jobs": _retry(ended, 240, f"{len(ids)} jobs to end")}


def main(argv: list[str]) -> int:
    commands = {"create-bucket": create_bucket, "wait-web": wait_web, "wait-workers": wait_workers,
                "submit": submit, "wait-jobs": wait_jobs}
    print(json.dumps(commands[argv[0]](*argv[1:])), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
