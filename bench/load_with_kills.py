"""Push a few thousand jobs through `dogbreed up` while SIGKILLing its worker, then count.

Prints accepted, succeeded, failed, lost (accepted but never finished: must be 0) and duplicated
(a job with more than one result: must be 0), plus how many redelivered executions the
idempotent write discarded. `dogbreed up` restarts each killed worker; the reaper re-enqueues
what the kills orphaned.

    python bench/load_with_kills.py --jobs 3000 --kill-every 6 --kills 5
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.stack import stack  # noqa: E402


def small_jpeg(i: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (i % 256, (i * 7) % 256, (i * 13) % 256)).save(buf, "JPEG")
    return buf.getvalue()


def worker_pids(queue: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", "--", f"cli.main worker --node .* --queues {queue}"],
                         capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def killer(queue: str, every_s: float, times: int, kills: list[int]) -> None:
    while len(kills) < times:
        time.sleep(every_s)
        for pid in worker_pids(queue):
            try:
                os.kill(pid, signal.SIGKILL)
                kills.append(pid)
                print(f"  killed worker pid {pid}", file=sys.stderr, flush=True)
            except ProcessLookupError:
                pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--kill-every", type=float, default=8.0, help="seconds between worker kills")
    parser.add_argument("--kills", type=int, default=5, help="how many times to kill the worker")
    parser.add_argument("--backbone", default="tiny")
    parser.add_argument("--wait-s", type=float, default=600, help="how long to wait for the last jobs")
    args = parser.parse_args()

    extra = {"DOGBREED_JOB_DEADLINE_S": "15", "DOGBREED_REAPER_INTERVAL_S": "3", "DOGBREED_MAX_ATTEMPTS": "25",
             "DOGBREED_MAX_QUEUED_JOBS": str(args.jobs * 2)}
    with stack(args.backbone, "random", 16, 20, extra_env=extra) as service:
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {service.env['DOGBREED_API_KEY']}"
        kills: list[int] = []
        kill_thread = threading.Thread(target=killer, args=(service.queue, args.kill_every, args.kills, kills), daemon=True)
        kill_thread.start()

        def submit(i: int) -> str | None:
            response = api.post(f"{service.url}/api/v1/jobs", files={"image": (f"{i}.jpg", small_jpeg(i))}, timeout=30)
            return response.json()["id"] if response.status_code == 202 else None

        started = time.monotonic()
        with cf.ThreadPoolExecutor(args.concurrency) as pool:
            ids = [job_id for job_id in pool.map(submit, range(args.jobs)) if job_id]
        print(f"submitted {len(ids)} in {time.monotonic() - started:.0f} s with {len(kills)} worker kills so far; "
              "waiting for the rest", file=sys.stderr)

        deadline = time.monotonic() + args.wait_s
        while True:
            history = fetch_all(api, service.url)
            open_jobs = [j for j in history if j["status"] in ("queued", "running")]
            if (not open_jobs and not kill_thread.is_alive()) or time.monotonic() > deadline:
                break
            print(f"  {len(open_jobs)} unfinished", file=sys.stderr, flush=True)
            time.sleep(3)
        discarded = service.log.read_text(errors="replace").count("duplicate result discarded")

    status = {job["id"]: job["status"] for job in history}
    report = {
        "accepted": len(ids),
        "succeeded": sum(1 for i in ids if status.get(i) == "succeeded"),
        "failed": sum(1 for i in ids if status.get(i) == "failed"),
        "lost": sum(1 for i in ids if status.get(i) in (None, "queued", "running")),
        # a job listed twice, or finished with anything but exactly one result or one error
        "duplicated": (len(history) - len(status))
        + sum(1 for j in history if (j["result"] is None) == (j["error"] is None) and j["status"] in ("succeeded", "failed")),
        "redelivered_executions_discarded": discarded,
        "worker_kills": len(kills),
        "seconds": round(time.monotonic() - started, 1),
    }
    print(json.dumps(report, indent=2))
    return 0 if report["lost"] == 0 and report["duplicated"] == 0 else 1


def fetch_all(api: requests.Session, url: str) -> list[dict]:
    jobs, page = [], 1
    while True:
        body = api.get(f"{url}/api/v1/jobs", params={"page": page, "per_page": 100}, timeout=30).json()
        jobs += body["jobs"]
        if not body["next"]:
            return jobs
        page += 1


if __name__ == "__main__":
    sys.exit(main())
