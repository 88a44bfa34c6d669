#!/usr/bin/env python
"""Issue 16's target table in one go, each ratio against a baseline measured in the same run.

Two throwaway stacks (bench/stack.py), one `dogbreed bench --json --albums N` against each:

1. the near-free `tiny` model (random weights) on generated photos: albums and single jobs against
   the CPU floor (the same photos decoded, resized and face-checked on every core, no service), and
   the worker's CPU per image beyond that floor;
2. the default models (EfficientNet-Lite2 ImageNet + YuNet) on a subset of the team's real photos
   (../shared/testdata/real): albums and single jobs against the raw batched model, and a lone
   job's latency over the raw model's single image. Skipped, saying so, when ../shared is missing.

    python bench/feed_the_gpu.py                          # a few minutes on 2 cores
    python bench/feed_the_gpu.py --jobs 512 --real-jobs 256 --photos 387
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from stack import ROOT, Stack, stack

TEAM = ROOT.parent / "shared"
REAL = TEAM / "testdata" / "real"
FACE_MODEL = TEAM / "models" / "face_detection_yunet_2026may.onnx"


def bench(service: Stack, args: argparse.Namespace, *extra: str, env: dict[str, str]) -> dict[str, Any]:
    command = [sys.executable, "-m", "cli.main", "bench", "--url", service.url, "--json",
               "--batch-size", str(args.batch), "--albums", str(args.albums), *extra]
    print("$ " + " ".join(command[1:]), file=sys.stderr, flush=True)
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, text=True, timeout=args.timeout_s,
                          env={**os.environ, **service.env, "DOGBREED_QUEUE": service.queue,
                               "CUDA_VISIBLE_DEVICES": "-1", **env})
    done.check_returncode()
    return json.loads(done.stdout)


def photo_subset(count: int, folder: Path) -> Path:
    """`count` of the real photos spread evenly over the sorted list (dogs, humans and others alike),
    linked into `folder`."""
    sys.path.insert(0, str(ROOT))
    from cli.client import image_files

    photos = image_files(REAL)
    step = max(1, len(photos) // max(1, count))
    for i, photo in enumerate(photos[::step][:count]):
        (folder / f"{i:04d}{photo.suffix.lower()}").symlink_to(photo)
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16, help="DOGBREED_MAX_BATCH and the raw batch size")
    parser.add_argument("--delay-ms", type=int, default=10, help="DOGBREED_MAX_BATCH_DELAY_MS")
    parser.add_argument("--albums", type=int, default=32, help="images per album")
    parser.add_argument("--jobs", type=int, default=128, help="images per phase with the tiny model")
    parser.add_argument("--real-jobs", type=int, default=96, help="images per phase with the default models")
    parser.add_argument("--photos", type=int, default=48, help="distinct real photos (repeated to fill --real-jobs)")
    parser.add_argument("--skip-real", action="store_true", help="only the tiny-model half")
    parser.add_argument("--timeout-s", type=int, default=900, help="per `dogbreed bench` run")
    args = parser.parse_args()

    faces = {"DOGBREED_FACE_MODEL": str(FACE_MODEL)} if FACE_MODEL.is_file() else {}
    if not faces:
        print(f"note: {FACE_MODEL} missing: YuNet is fetched, or the service falls back to Haar", file=sys.stderr)
    with stack("tiny", "random", args.batch, args.delay_ms, extra_env=faces) as service:
        tiny = bench(service, args, "--backbone", "tiny", "--weights", "random", "--jobs", str(args.jobs),
                     env={**faces, "DOGBREED_MODEL_DIR": str(service.log.parent / "var" / "models")})
    real: dict[str, Any] | None = None
    if args.skip_real:
        print("default models on real photos: skipped (--skip-real)", file=sys.stderr)
    elif not REAL.is_dir():
        print(f"default models on real photos: skipped, {REAL} is missing (the team's ../shared folder)",
              file=sys.stderr)
    else:
        with tempfile.TemporaryDirectory(prefix="dogbreed-photos-") as tmp, \
                stack("efficientnet_lite2", "imagenet", args.batch, args.delay_ms, extra_env=faces) as service:
            photos = photo_subset(args.photos, Path(tmp))
            real = bench(service, args, "--images", str(photos), "--jobs", str(args.real_jobs),
                         env={**faces, "DOGBREED_MODEL_DIR": str(service.log.parent / "var" / "models")})

    sys.path.insert(0, str(ROOT))
    from cli.bench.report import TARGETS, table

    print("== tiny model (random weights), generated photos ==\n" + table(tiny))
    if real:
        print("\n== default models, real photos ==\n" + table(real))
    print(f"\n== issue 16 targets ({os.cpu_count()} cores, batch {args.batch}, albums of {args.albums}) ==")
    rows = [(label, key, target, tiny if "floor" in key else real) for label, key, target in TARGETS]
    width = max(len(label) for label, *_ in rows)
    for label, key, target, record in rows:
        value = record.get(key) if record else None
        print(f"  {label:<{width}}  {'n/a' if value is None else value!s:>8}  (target {target})")
    print(json.dumps({"tiny": tiny, "real": real}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
