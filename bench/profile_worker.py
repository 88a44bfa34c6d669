#!/usr/bin/env python
"""Where a worker process spends its time: py-spy samples of a throwaway stack's worker under load.

Starts `dogbreed up` with the near-free `tiny` model (bench/stack.py), finds its worker process
(cli.bench.cpu.find_workers), and for each load below records `py-spy record --format raw` of that
process while closed-loop clients keep it busy, then prints the top frames by own time and the
share of samples that pass through each library (a sample counts once per library on its stack):

- `singles-noop`: single jobs on the no-op pipeline (HTTP, database, queue; no model);
- `singles-tiny`: single jobs with the tiny model (decode, resize, faces, a near-free model);
- `albums-tiny`: the same as albums (albums have no no-op pipeline: this is the nearest they get).

    sudo -E .venv/bin/python bench/profile_worker.py --seconds 10     # py-spy needs ptrace: root here

py-spy attaches with ptrace; in a container that needs root or CAP_SYS_PTRACE. `--nonblocking`
(the default here) samples without stopping the process, so the profile does not slow what it measures.
"""
from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from stack import ROOT, stack

sys.path.insert(0, str(ROOT))

LIBRARIES = {  # substring of a frame's file -> the name shown
    "sqlalchemy": "SQLAlchemy", "sqlite3": "sqlite3", "psycopg": "psycopg", "redis": "redis-py",
    "kombu": "kombu", "celery": "celery", "billiard": "billiard", "PIL": "Pillow", "cv2": "OpenCV",
    "tensorflow": "TensorFlow", "keras": "Keras", "numpy": "numpy",
    "(worker/": "our worker/", "(shared/": "our shared/", "(ml/": "our ml/",  # py-spy names files from sys.path
}


def summarise(raw: Path, top: int) -> str:
    """Top frames by own samples, and each library's share of all samples (a stack counted once per library)."""
    own: collections.Counter[str] = collections.Counter()
    libraries: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not stack_text or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack_text.split(";")
        total += count
        own[frames[-1]] += count
        for name in {name for frame in frames for key, name in LIBRARIES.items() if key in frame}:
            libraries[name] += count
    if not total:
        return "  (no samples)"
    lines = [f"  {total} samples; top frames by own time:"]
    lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in own.most_common(top)]
    lines.append("  share of samples passing through:")
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in libraries.most_common()]
    return "\n".join(lines)


def load(url: str, key: str, kind: str, stop: threading.Event, concurrency: int, album: int) -> int:
    """Keep the worker busy until `stop`; how many images were done."""
    from cli.bench.client import Client, run_albums
    from cli.bench.images import make_images

    client = Client(url, key)
    images = make_images(album * concurrency if kind == "albums" else 4 * concurrency, seed=1)
    done = 0
    while not stop.is_set():
        if kind == "albums":
            done += run_albums(client, images, album, concurrency).images
        else:
            done += len(client.run_many(images, concurrency, "noop" if kind == "singles-noop" else "classify").timed)
    return done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="py-spy duration per load")
    parser.add_argument("--rate", type=int, default=100, help="samples per second")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--album", type=int, default=32)
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--loads", default="singles-noop,singles-tiny,albums-tiny")
    parser.add_argument("--blocking", action="store_true", help="let py-spy pause the process per sample")
    parser.add_argument("--out", help="keep the raw profiles in this folder")
    parser.add_argument("--summarise", nargs="+", metavar="RAW", help="only summarise these `py-spy record "
                                                                       "--format raw` files (no stack)")
    args = parser.parse_args()
    if args.summarise:
        for raw in args.summarise:
            print(f"## {raw}\n{summarise(Path(raw), args.top)}")
        return 0

    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("py-spy not found: pip install py-spy (it is in the dev extra)", file=sys.stderr)
        return 2
    from cli.bench.cpu import find_workers

    out = Path(args.out or tempfile.mkdtemp(prefix="dogbreed-pyspy-"))
    out.mkdir(parents=True, exist_ok=True)
    face_model = ROOT.parent / "shared" / "models" / "face_detection_yunet_2026may.onnx"
    faces = {"DOGBREED_FACE_MODEL": str(face_model)} if face_model.is_file() else {}  # else YuNet falls back to Haar
    with stack("tiny", "random", args.batch, 10, extra_env=faces) as service:
        pids = find_workers(service.queue)
        if not pids:
            print(f"no worker process on queue {service.queue}", file=sys.stderr)
            return 1
        from cli.bench.client import Client
        from cli.bench.images import make_images

        # one classify job first: the worker has loaded its models, so start-up is not in the profile
        warm = Client(service.url, service.env["DOGBREED_API_KEY"]).run_one(make_images(1)[0]).job
        print(f"warm-up job {warm['status']}, faces: {warm.get('result', {}).get('model', {}).get('faces')}")
        print(f"worker pid {pids[0]} ({os.cpu_count()} cores, batch {args.batch})")
        for kind in args.loads.split(","):
            stop = threading.Event()
            albums = kind.startswith("albums")
            driver = threading.Thread(target=load, args=(service.url, service.env["DOGBREED_API_KEY"],
                                                          "albums" if albums else kind, stop,
                                                          2 if albums else 2 * args.batch, args.album))
            driver.start()
            time.sleep(3)  # the load reaches its steady state before sampling
            raw = out / f"{kind}.txt"
            command = [spy, "record", "--format", "raw", "-p", str(pids[0]), "-d", str(args.seconds),
                       "-r", str(args.rate), "-o", str(raw), *([] if args.blocking else ["--nonblocking"])]
            print(f"\n## {kind}\n$ {' '.join(command)}", flush=True)
            spied = subprocess.run(command, capture_output=True, text=True)
            stop.set()
            driver.join()
            if spied.returncode != 0:
                print(f"  py-spy failed ({spied.returncode}): {spied.stderr.strip()[-800:]}")
                continue
            print(summarise(raw, args.top))
    print(f"\nraw profiles: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
