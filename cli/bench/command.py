"""`dogbreed bench`: how fast is my deployment, against the raw model on this machine, in one run.

Sends generated real-size images (or your own, with --images DIR) through the running service (API
to result), then times one job
with the queue idle, the no-op pipeline through the same queue, a bare Celery task on the same
broker, and finally the raw model in this process on the same images. Run it on the worker's
machine: the raw figures are the ceiling the service is held to.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import requests

from shared.settings import Settings


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", required=True, help="the service, e.g. http://127.0.0.1:8000")
    parser.add_argument("--jobs", type=int, help="images sent end to end (default 200, or every photo in --images)")
    parser.add_argument("--images", metavar="DIR", help="time your own photos from DIR (and its subfolders), "
                                                        "repeated to fill --jobs, instead of generated ones")
    parser.add_argument("--concurrency", type=int, help="clients at once (default: twice the batch size)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--backbone", help="raw model's backbone (default: what the service reports)")
    parser.add_argument("--weights", help="raw model's weights: imagenet, random or a file (default: the service's)")
    parser.add_argument("--batch-size", type=int, help="raw batch size (default DOGBREED_MAX_BATCH, else 16)")
    parser.add_argument("--api-key", default=os.environ.get("DOGBREED_API_KEY"),
                        help="API key when auth is on (default: env DOGBREED_API_KEY)")
    parser.add_argument("--broker-url", help="broker for the bare-Celery baseline (default DOGBREED_BROKER_URL; "
                                             "skipped when unset)")
    parser.add_argument("--idle-jobs", type=int, default=5, help="single jobs timed with the queue idle (median)")
    parser.add_argument("--seed", type=int, default=0)


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def progress(label: str, total: int):
    """Report every tenth of a long phase on stderr."""
    step = max(1, total // 10)
    start = time.perf_counter()

    def report(done: int) -> None:
        if done % step == 0 or done == total:
            say(f"{label}: {done}/{total} ({time.perf_counter() - start:.1f}s)")

    return report


def raw_model_choice(args: argparse.Namespace, service_model: dict[str, Any]) -> tuple[str, str]:
    """The backbone and weights the service runs, unless told otherwise; a weights file must be here."""
    from cli.bench.client import BenchError

    backbone = args.backbone or service_model.get("backbone")
    weights = args.weights or service_model.get("weights")
    if not backbone or not weights:
        raise BenchError(f"the service reports no model ({service_model}); pass --backbone and --weights")
    if backbone != service_model.get("backbone"):
        say(f"warning: the service runs {service_model.get('backbone')}, the raw model is {backbone}")
    if weights not in ("imagenet", "random", "none") and not os.path.isfile(weights):
        raise BenchError(f"the service's weights are the file {weights!r}; pass --weights PATH to that file")
    return backbone, weights


def measure(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    from cli.bench import bare_celery, raw
    from cli.bench.client import TIGHT, BenchError, Client
    from cli.bench.images import load_images, make_images
    from cli.bench.report import figures

    batch_size = args.batch_size or settings.chunk_size
    concurrency = args.concurrency or 2 * batch_size
    images = load_images(args.images, args.jobs) if args.images else make_images(args.jobs or 200, seed=args.seed)
    client = Client(args.url, args.api_key)

    say("warm-up job")
    first = client.run_one(images[0]).job  # backed-off polling: the worker may still be loading
    if first["status"] != "succeeded":
        raise BenchError(f"a warm-up job failed: {first.get('error')}")
    service_model = first["result"].get("model", {})
    backbone, weights = raw_model_choice(args, service_model)

    e2e = client.run_many(images, concurrency, progress=progress("end to end", len(images)))
    say(f"{len(images)} jobs in {e2e.wall_s:.1f}s; now {args.idle_jobs} jobs one at a time, queue idle")
    time.sleep(0.5)
    idle = [client.run_one(image, poll=TIGHT) for image in images[:max(1, args.idle_jobs)]]

    try:
        noop = client.run_many(images, concurrency, "noop", progress=progress("no-op pipeline", len(images)))
    except BenchError as exc:
        say(f"no-op pipeline skipped: {exc}")
        noop = None
    broker = args.broker_url or settings.broker_url
    bare = None
    if broker:
        say(f"bare Celery tasks on the same broker ({len(images)} messages)")
        bare = bare_celery.measure(broker, batch_size, len(images))
    else:
        say("bare Celery baseline skipped: pass --broker-url or set DOGBREED_BROKER_URL")

    say(f"raw model in this process: {backbone} ({weights}), batches of {batch_size}")
    raw_figures = raw.measure(images, backbone, weights, batch_size, settings,
                              service_model.get("faces", settings.face_detector))
    return figures(e2e, idle, noop, bare, raw_figures, {**service_model, "backbone": backbone, "weights": weights},
                   batch_size, concurrency)


def run(args: argparse.Namespace) -> int:
    from cli.bench.client import BenchError
    from cli.bench.images import NoImages
    from cli.bench.report import table
    from cli.client import ServiceError

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.jobs is not None and args.jobs < 1:
        say("--jobs must be at least 1")
        return 2
    try:
        record = measure(args, Settings.from_env())
    except (BenchError, ServiceError, NoImages, requests.RequestException) as exc:
        say(str(exc))
        return 1
    print(json.dumps(record) if args.json else table(record))
    return 0
