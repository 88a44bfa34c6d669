#!/usr/bin/env python
"""End-to-end service against the raw model, same machine, same images, one run.

Starts a throwaway `dogbreed up` (random weights by default: speed does not depend on them), runs
`dogbreed bench --json` against it, prints the JSON and the ratios the throughput issue targets.

    python bench/e2e_vs_raw.py --backbone mobilenet_v2 --batch 16 --jobs 160
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from stack import ROOT, stack

TARGETS = [
    ("e2e / raw batched", "ratio_e2e_to_raw_batched", ">= 0.4"),
    ("idle job - raw one image (ms)", "idle_latency_over_raw_single_ms", "<= 30"),
    ("no-op / bare Celery", "ratio_noop_to_bare_celery", ">= 0.5"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="mobilenet_v2")
    parser.add_argument("--weights", default="random")
    parser.add_argument("--batch", type=int, default=16, help="DOGBREED_MAX_BATCH and the raw batch size")
    parser.add_argument("--delay-ms", type=int, default=10, help="DOGBREED_MAX_BATCH_DELAY_MS")
    parser.add_argument("--jobs", type=int, default=160)
    parser.add_argument("--concurrency", type=int, help="default: twice the batch")
    parser.add_argument("--gpus", default="cpu", help="passed to `dogbreed up --gpus` (cpu, all, 0,1)")
    parser.add_argument("--broker-url", help="default: what `dogbreed up` finds (Redis on 6379, else its own)")
    parser.add_argument("--face-model", help="DOGBREED_FACE_MODEL for the service (a YuNet .onnx file)")
    parser.add_argument("--images", help="time these photos (a folder, searched recursively) instead of generated ones")
    args = parser.parse_args()

    extra = {"DOGBREED_FACE_MODEL": str(Path(args.face_model).resolve())} if args.face_model else {}
    with stack(args.backbone, args.weights, args.batch, args.delay_ms, args.gpus, args.broker_url, extra) as service:
        env = {**service.env, **extra}  # the raw baseline runs the same face detector as the service
        command = [sys.executable, "-m", "cli.main", "bench", "--url", service.url, "--json", "--jobs", str(args.jobs),
                   "--batch-size", str(args.batch), "--weights", args.weights]
        if args.images:
            command += ["--images", str(Path(args.images).resolve())]
        if args.concurrency:
            command += ["--concurrency", str(args.concurrency)]
        if args.gpus == "cpu":
            env["CUDA_VISIBLE_DEVICES"] = "-1"
        done = subprocess.run(command, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        return done.returncode
    record = json.loads(done.stdout)
    print(json.dumps(record, indent=2))
    for label, key, target in TARGETS:
        print(f"{label:<32} {record.get(key)!s:>8}   (target {target})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
