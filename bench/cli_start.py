"""How long the light `dogbreed` commands take to start, as a ratio to a bare `python -c pass`.

The web process and the light CLI commands must never load TensorFlow: this is where their
start-up is timed (tests only check which modules load).
Usage: python bench/cli_start.py [--runs 5]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = [["--help"], ["models", "list"], ["users", "--help"], ["gc", "--help"]]


def best_of(argv: list[str], runs: int, env: dict[str, str]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, cwd=ROOT, env=env, capture_output=True)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as var:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "DOGBREED_VAR_DIR": var}
        subprocess.run([sys.executable, "-m", "cli.main", "db", "upgrade"], cwd=ROOT, env=env, capture_output=True)
        baseline = best_of([sys.executable, "-c", "pass"], args.runs, env)
        print(f"python -c pass: {baseline * 1000:.0f} ms (the baseline)")
        for argv in COMMANDS:
            took = best_of([sys.executable, "-m", "cli.main", *argv], args.runs, env)
            print(f"dogbreed {' '.join(argv):<14} {took * 1000:6.0f} ms  {took / baseline:5.1f}x baseline, "
                  f"{(took - baseline) * 1000:5.0f} ms over it")


if __name__ == "__main__":
    main()
