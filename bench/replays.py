"""What an Idempotency-Key replay (200) and a reused key (409) cost the web, against the first submit.

    PYTHONPATH=$PWD .venv/bin/python bench/replays.py [--repeats 10] [--megapixels 50]

Issue 18 item 6: replays and 409s skipped the rate limiter but still decoded the image, so 10 requests
with a 50 MP PNG cost seconds of CPU and no 429. The app runs in this process (Flask's test client,
a SQLite file, the Redis at DOGBREED_BROKER_URL or 127.0.0.1:6379 under a queue of its own), so the
CPU time measured is the web's. Baseline, in the same run: the first submit of the same PNG (its
decode, store and thumbnail). Target: a replay and a 409 cost a small fraction of it (no decode).
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402

from cli import db as migrate  # noqa: E402
from shared.settings import Settings  # noqa: E402
from web.app import create_app  # noqa: E402


def png(side: int, shade: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (side, side), (shade, 120, 60)).save(out, "PNG")
    return out.getvalue()


def timed(fn) -> tuple[float, float]:
    """(wall s, CPU s of this process) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--megapixels", type=int, default=50)
    args = parser.parse_args()
    side = int((args.megapixels * 1_000_000) ** 0.5)
    first_png, other_png = png(side, 10), png(side, 200)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/dogbreed.db"
        migrate.upgrade(url)
        settings = Settings(var_dir=Path(tmp), database_url=url, storage_dir=Path(tmp) / "images",
                            broker_url=os.environ.get("DOGBREED_BROKER_URL") or "redis://127.0.0.1:6379/0",
                            queue=f"bench-{uuid.uuid4().hex[:8]}", auth_required=False, secret_key="bench",
                            rate_limit_per_minute=3, max_pixels=max(50_000_000, side * side))
        app = create_app(settings)
        client = app.test_client()

        def submit(data: bytes, expect: int) -> None:
            answer = client.post("/api/v1/jobs", data={"image": (io.BytesIO(data), "big.png")},
                                 content_type="multipart/form-data", headers={"Idempotency-Key": "bench"})
            assert answer.status_code == expect, (answer.status_code, answer.get_json())

        first = timed(lambda: submit(first_png, 202))
        replays = [timed(lambda: submit(first_png, 200)) for _ in range(args.repeats)]
        clashes = [timed(lambda: submit(other_png, 409)) for _ in range(args.repeats)]
        import redis

        client_redis = redis.Redis.from_url(settings.broker_url)
        for key in client_redis.scan_iter(f"{settings.queue}*"):
            client_redis.delete(key)
    print(f"{args.megapixels} MP PNG ({len(first_png) // 1024} KiB), {args.repeats} of each")
    print(f"{'request':<22}{'wall ms':>10}{'cpu ms':>10}{'cpu / first':>13}")
    print(f"{'first submit (202)':<22}{first[0] * 1000:>10.1f}{first[1] * 1000:>10.1f}{1:>13.3f}")
    for name, runs in (("replay (200)", replays), ("reused key (409)", clashes)):
        wall = sum(r[0] for r in runs) / len(runs)
        cpu = sum(r[1] for r in runs) / len(runs)
        print(f"{name:<22}{wall * 1000:>10.1f}{cpu * 1000:>10.1f}{cpu / max(first[1], 1e-9):>13.3f}")
    total = sum(r[1] for r in replays + clashes)
    print(f"all {2 * args.repeats} replays and 409s: {total:.2f} s of CPU")


if __name__ == "__main__":
    main()
