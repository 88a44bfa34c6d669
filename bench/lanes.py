#!/usr/bin/env python
"""Priority lanes: a single upload's latency while a 320-image album runs, against the same on an
idle service, lanes off (one queue) and on, one run.

For each setting it starts a throwaway `dogbreed up --gpus cpu` (one real worker, the backbone
given), times `--singles` single uploads one after another on the idle service, then sends the
album and times single uploads one after another while the album is still running. A job's
latency is the service's own, created_at -> finished_at (no polling lag). Prints the medians and
the ratio busy/idle per setting (target with lanes on: <= 2).

    python bench/lanes.py                                  # mobilenet_v2 (random weights), 320 images
    python bench/lanes.py --backbone tiny --album 320      # the near-free stand-in model
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time

from stack import stack

from cli.bench.client import BenchError, Client
from cli.bench.images import make_images
from cli.client import Poll, ServiceError

# Latency is the service's own (created_at -> finished_at), so polling only has to notice the end;
# polling harder would take the CPU the worker is being measured on.
SINGLE_POLL = Poll(first_s=0.025, factor=1.0, max_s=0.025)
ALBUM_POLL_S = 1.0  # a 320-job album's JSON is big: poll it seldom


def latencies(client: Client, images: list[bytes], keep_going=lambda: True) -> list[float]:
    """Single uploads one after another (while `keep_going`), each one's service latency in ms."""
    found = []
    for image in images:
        if not keep_going():
            break
        try:
            timed = client.run_one(image, poll=SINGLE_POLL)
        except BenchError as exc:  # a reset connection on a loaded machine: that upload is not counted
            print(f"single: {exc}", file=sys.stderr)
            continue
        if timed.job["status"] != "succeeded":
            raise RuntimeError(f"a single job ended {timed.job['status']}: {timed.job.get('error')}")
        if keep_going():  # it ended while the album still ran
            found.append(timed.server_seconds * 1000)
    return found


def measure(args, lanes: bool) -> dict:
    extra = {"DOGBREED_LANES": "1" if lanes else "0", "DOGBREED_MAX_FILES_PER_REQUEST": str(args.album)}
    album_images = make_images(args.album, seed=1)
    singles = make_images(args.singles * 4, seed=2)
    with stack(args.backbone, args.weights, args.batch, args.delay_ms, "cpu", extra_env=extra) as service:
        client = Client(service.url, service.env["DOGBREED_API_KEY"])
        latencies(client, singles[:2])  # warm: the first passes of a fresh worker
        idle = latencies(client, singles[:args.singles])
        submitted = client.submit_album([(f"a{i}.jpg", data) for i, data in enumerate(album_images)])
        done = threading.Event()
        album_s: list[float] = []

        def wait_album() -> None:
            """Until the album is done, through passing refusals of a loaded machine (a reset connection)."""
            start = time.perf_counter()
            while True:
                try:
                    album = client.album(submitted)
                except ServiceError as exc:
                    print(f"album poll: {exc}; again", file=sys.stderr)
                    album = None
                if album is not None and album["summary"]["done"]:
                    break
                time.sleep(ALBUM_POLL_S)
            album_s.append(time.perf_counter() - start)
            failed = [job for job in album["jobs"] if job.get("status") != "succeeded"]
            if failed:
                print(f"album: {len(failed)} job(s) did not succeed: {failed[0]}", file=sys.stderr)
            done.set()

        waiter = threading.Thread(target=wait_album, daemon=True)
        waiter.start()
        while not (lambda summary: summary["running"] + summary["succeeded"])(client.album(submitted)["summary"]):
            time.sleep(0.05)  # until the album's images are in the worker
        busy = latencies(client, singles[args.singles:] * 40, keep_going=lambda: not done.is_set())
        waiter.join(timeout=1800)
    record = {"lanes": lanes, "idle_ms": statistics.median(idle), "busy_ms": statistics.median(busy) if busy else None,
              "idle_n": len(idle), "busy_n": len(busy), "album_s": round(album_s[0], 2) if album_s else None,
              "album_images_per_s": round(args.album / album_s[0], 1) if album_s else None}
    record["ratio"] = round(record["busy_ms"] / record["idle_ms"], 2) if busy else None
    return record


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="mobilenet_v2")
    parser.add_argument("--weights", default="random")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--delay-ms", type=int, default=10)
    parser.add_argument("--album", type=int, default=320)
    parser.add_argument("--singles", type=int, default=8)
    args = parser.parse_args()
    records = [measure(args, lanes) for lanes in (False, True)]
    print(f"backbone {args.backbone} ({args.weights} weights), album of {args.album}, batch {args.batch}, one CPU worker")
    print(f"{'lanes':6} {'idle ms':>8} {'busy ms':>8} {'busy/idle':>9} {'n busy':>6} {'album images/s':>14}")
    for r in records:
        print(f"{'on' if r['lanes'] else 'off':6} {r['idle_ms']:8.1f} {r['busy_ms'] or float('nan'):8.1f} "
              f"{r['ratio'] or float('nan'):9.2f} {r['busy_n']:6d} {r['album_images_per_s'] or float('nan'):14.1f}")
    print(json.dumps(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
