"""`dogbreed bench`: how fast is my deployment, against the raw model on this machine, in one run.

Sends generated real-size images (or your own, with --images DIR) through the running service (API
to result), then times one job
with the queue idle, the no-op pipeline through the same queue, a bare Celery task on the same
broker, and finally the raw model in this process on the same images. Run it on the worker's
machine: the raw figures are the ceiling the service is held to. With --albums N the same images go
again as albums of N; with the near-free `tiny` backbone the CPU floor (decode, resize and faces on
every core, no service) is measured too; the worker processes' CPU time is read from /proc.
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
    parser.add_argument("--albums", type=int, metavar="N", help="also send the same images as albums of N "
                                                                "(POST /api/v1/batches) and report images/s")
    parser.add_argument("--album-concurrency", type=int,
                        help="albums in flight at once (default: enough for two batches, at least 2)")
    parser.add_argument("--cpu-floor", action="store_true",
                        help="measure the CPU floor (decode+resize+faces on all cores, no service) even when "
                             "the backbone is not tiny (it always runs with --backbone tiny)")
    parser.add_argument("--worker-pid", type=int, action="append", metavar="PID",
                        help="a worker process whose CPU time to count (repeat it; default: this machine's "
                             "`dogbreed worker` processes on DOGBREED_QUEUE)")


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
    from cli.bench import bare_celery, cpu, raw
    from cli.bench.client import TIGHT, BenchError, Client, run_albums
    from cli.bench.images import load_images, make_images
    from cli.bench.report import Extra, figures

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

    worker_pids = args.worker_pid or cpu.find_workers(settings.queue)
    if not worker_pids:
        say(f"worker CPU skipped: no `dogbreed worker` process on queue {settings.queue!r} here; pass --worker-pid")
    else:
        say(f"worker CPU from process(es) {', '.join(map(str, worker_pids))}")
    cpu_before = cpu.cpu_seconds(worker_pids)
    e2e = client.run_many(images, concurrency, progress=progress("end to end", len(images)))
    worker_cpu_s = cpu.cpu_seconds(worker_pids) - cpu_before if worker_pids else None
    say(f"{len(images)} jobs in {e2e.wall_s:.1f}s; now {args.idle_jobs} jobs one at a time, queue idle")
    time.sleep(0.5)
    idle = [client.run_one(image, poll=TIGHT) for image in images[:max(1, args.idle_jobs)]]

    albums = None
    album_cpu_s = None
    if args.albums:
        in_flight = args.album_concurrency or max(2, -(-2 * batch_size // args.albums))
        count = -(-len(images) // args.albums)
        say(f"{count} albums of {args.albums}, {in_flight} in flight")
        cpu_before = cpu.cpu_seconds(worker_pids)
        albums = run_albums(client, images, args.albums, in_flight, progress=progress("albums", count))
        album_cpu_s = cpu.cpu_seconds(worker_pids) - cpu_before if worker_pids else None
        if albums.failed():
            raise BenchError(f"{len(albums.failed())} album jobs did not succeed, e.g. {albums.failed()[0]}")

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
    faces_kind = service_model.get("faces", settings.face_detector)
    raw_figures = raw.measure(images, backbone, weights, batch_size, settings, faces_kind)
    floor = None
    if backbone == "tiny" or args.cpu_floor:
        say(f"CPU floor: decode + resize to {raw_figures.input_size} + faces ({faces_kind}) on "
            f"{os.cpu_count()} processes, no service")
        floor = cpu.floor(images, raw_figures.input_size, faces_kind, settings.face_model, settings.model_dir,
                          settings.max_pixels)
    return figures(e2e, idle, noop, bare, raw_figures, {**service_model, "backbone": backbone, "weights": weights},
                   batch_size, concurrency,
                   Extra(albums, args.albums, worker_cpu_s, album_cpu_s, len(worker_pids), floor))


def run(args: argparse.Namespace) -> int:
    from cli.bench.client import BenchError
    from cli.bench.images import NoImages
    from cli.bench.report import table
    from cli.client import ServiceError

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.jobs is not None and args.jobs < 1:
        say("--jobs must be at least 1")
        return 2
    if args.albums is not None and args.albums < 1:
        say("--albums must be at least 1")
        return 2
    try:
        record = measure(args, Settings.from_env())
    except (BenchError, ServiceError, NoImages, requests.RequestException) as exc:
        say(str(exc))
        return 1
    print(json.dumps(record) if args.json else table(record))
    return 0
