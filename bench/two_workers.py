#!/usr/bin/env python
"""One worker process against two on the same queue, same machine, same images, one run.

Starts a throwaway `dogbreed up --gpus cpu` (one worker), runs `dogbreed bench` against it, then
starts a second worker process with its own node name on the same queue and database and runs
`dogbreed bench` again. Prints both tables and the throughput ratio two/one. On a machine with
fewer cores than two workers need, expect about 1.0: the second process only takes CPU from the first.

    python bench/two_workers.py --backbone mobilenet_v2 --batch 16 --jobs 96
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time

from stack import ROOT, stack


def bench(service, args) -> dict:
    command = [sys.executable, "-m", "cli.main", "bench", "--url", service.url, "--json", "--jobs", str(args.jobs),
               "--batch-size", str(args.batch), "--weights", args.weights]
    env = {**os.environ, **service.env, "CUDA_VISIBLE_DEVICES": "-1"}
    done = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, timeout=1800)
    done.check_returncode()
    return json.loads(done.stdout)


def table(record: dict) -> str:
    sys.path.insert(0, str(ROOT))
    from cli.bench.report import table as format_table

    return format_table(record)


def wait_for_node(service, node: str, proc: subprocess.Popen, timeout_s: float = 180) -> None:
    from celery import Celery

    app = Celery("bench-probe", broker=service.env["DOGBREED_BROKER_URL"])
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the second worker exited ({proc.returncode})")
            if app.control.ping(destination=[node], timeout=1.0):
                return
        raise RuntimeError(f"{node} did not answer within {timeout_s}s")
    finally:
        app.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="mobilenet_v2")
    parser.add_argument("--weights", default="random")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--delay-ms", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=96)
    args = parser.parse_args()

    with stack(args.backbone, args.weights, args.batch, args.delay_ms, "cpu") as service:
        one = bench(service, args)
        node = "cpu2@bench"
        folder = service.log.parent
        second = subprocess.Popen([sys.executable, "-m", "cli.main", "worker", "--node", node, "--queues", service.queue],
                                  cwd=folder, env={**service.up_env, "CUDA_VISIBLE_DEVICES": "-1"},
                                  stdout=open(folder / "worker2.log", "wb"), stderr=subprocess.STDOUT,
                                  start_new_session=True)
        try:
            wait_for_node(service, node, second)
            two = bench(service, args)
        finally:
            os.killpg(second.pid, signal.SIGTERM)
            second.wait(timeout=60)
    print("== one worker process ==\n" + table(one))
    print("\n== two worker processes ==\n" + table(two))
    key = "e2e_jobs_per_s"
    if key in one and key in two:
        print(f"\nthroughput two/one: {two[key] / one[key]:.2f}  ({one[key]} -> {two[key]} jobs/s; "
              f"{os.cpu_count()} CPU cores)")
    print(json.dumps({"one": one, "two": two}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
