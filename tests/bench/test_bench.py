"""`dogbreed bench` against a real `dogbreed up`: every figure present, positive and consistent (no timing asserted)."""
import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from cli.bench.report import ROWS, table
from cli.broker import free_port
from tests.e2e.test_up import Up
from tests.helpers import images as make
from tests.helpers.services import ROOT

KEYS = {"jobs", "e2e_jobs_per_s", "raw_batched_images_per_s", "raw_single_images_per_s", "ratio_e2e_to_raw_batched",
        "noop_jobs_per_s", "latency_ms_p50", "latency_ms_p99", "idle_latency_ms", "raw_single_latency_ms",
        "bare_celery_tasks_per_s", "ratio_noop_to_bare_celery", "backbone", "batch_size", "device"}
TEXT = {"backbone", "weights", "device"}
ALBUM_KEYS = {"albums_images_per_s", "ratio_albums_to_raw_batched", "cpu_floor_images_per_s", "cpu_floor_cpu_ms_per_image",
              "ratio_e2e_to_cpu_floor", "ratio_albums_to_cpu_floor", "worker_cpu_ms_per_image",
              "worker_cpu_ms_per_image_albums", "worker_cpu_ms_per_image_beyond_floor",
              "worker_cpu_ms_per_image_beyond_floor_albums"}
MAY_BE_NEGATIVE = {"idle_latency_over_raw_single_ms", "worker_cpu_ms_per_image_beyond_floor",
                   "worker_cpu_ms_per_image_beyond_floor_albums"}


def bench(url: str, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", "bench", "--url", url, *extra], cwd=ROOT,
                          env={**os.environ, "CUDA_VISIBLE_DEVICES": "-1", **(env or {})},
                          capture_output=True, text=True, timeout=240)


@pytest.mark.slow
@pytest.mark.parametrize("own_images", [False, True], ids=["generated", "images-dir"])
def test_bench_measures_a_running_service_against_the_raw_model(tmp_path, redis_url, own_images):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOGBREED_")}
    env.update(PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="-1", DOGBREED_MAX_BATCH="4",
               DOGBREED_BROKER_URL=redis_url, DOGBREED_QUEUE=f"bench-{uuid.uuid4().hex[:10]}",
               DOGBREED_BACKBONE="tiny", DOGBREED_BACKBONE_WEIGHTS="random")
    service = Up(tmp_path, env)
    try:
        service.wait_ready()
        key = (tmp_path / "var" / "local-api-key").read_text().strip()
        photos = []
        if own_images:  # three photos of the user's, repeated to make 12 jobs
            (tmp_path / "photos").mkdir()
            for i in range(3):
                (tmp_path / "photos" / f"p{i}.jpg").write_bytes(make.jpeg(320, 240, seed=i))
            photos = ["--images", str(tmp_path / "photos")]
        done = bench(service.url, *photos, "--jobs", "12", "--concurrency", "4", "--json", "--backbone", "tiny",
                     "--weights", "random", "--batch-size", "4", "--albums", "4",
                     env={"DOGBREED_API_KEY": key, "DOGBREED_BROKER_URL": redis_url,
                          "DOGBREED_QUEUE": env["DOGBREED_QUEUE"]})  # the worker whose CPU time is read
    finally:
        service.stop()
    assert done.returncode == 0, done.stderr[-4000:]
    record = json.loads(done.stdout)
    assert KEYS | ALBUM_KEYS <= record.keys()
    assert record["jobs"] == 12 and record["failed_jobs"] == 0
    assert record["album_size"] == 4 and record["album_images"] == 12 and record["failed_album_jobs"] == 0
    assert record["worker_processes"] == 1 and record["cpu_floor_processes"] == os.cpu_count()
    assert record["backbone"] == "tiny" and record["weights"] == "random" and record["batch_size"] == 4
    assert record["polls_per_job"] == 0  # sync mode: each job's end comes in its submit's answer
    numbers = {k: v for k, v in record.items()
               if k not in TEXT | MAY_BE_NEGATIVE | {"failed_jobs", "failed_album_jobs", "polls_per_job"}}
    assert all(isinstance(v, (int, float)) and v > 0 for v in numbers.values()), numbers
    assert record["ratio_e2e_to_raw_batched"] == pytest.approx(
        record["e2e_jobs_per_s"] / record["raw_batched_images_per_s"], abs=0.002)
    assert record["ratio_noop_to_bare_celery"] == pytest.approx(
        record["noop_jobs_per_s"] / record["bare_celery_tasks_per_s"], abs=0.002)
    for ratio, numerator, denominator in (
            ("ratio_albums_to_raw_batched", "albums_images_per_s", "raw_batched_images_per_s"),
            ("ratio_e2e_to_cpu_floor", "e2e_jobs_per_s", "cpu_floor_images_per_s"),
            ("ratio_albums_to_cpu_floor", "albums_images_per_s", "cpu_floor_images_per_s")):
        assert record[ratio] == pytest.approx(record[numerator] / record[denominator], abs=0.002), ratio
    for suffix in ("", "_albums"):
        assert record[f"worker_cpu_ms_per_image_beyond_floor{suffix}"] == pytest.approx(
            record[f"worker_cpu_ms_per_image{suffix}"] - record["cpu_floor_cpu_ms_per_image"], abs=0.02)
    assert "issue 16 target" in table(record) and "albums of 4" in table(record)
    assert record["latency_ms_p50"] <= record["latency_ms_p99"]
    assert 1 <= record["service_mean_batch_size"] <= 4
    assert "end to end" in done.stderr and "albums" in done.stderr  # progress on stderr, the JSON alone on stdout


def test_worker_cpu_is_read_from_the_processes_found_by_their_queue():
    """A real process named like a worker (its --queues) is found, and its CPU time and its child's are read."""
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    burn = "import subprocess, sys; c = subprocess.Popen([sys.executable, '-c', 'while True: pass']); sum(range(10**7)); c.wait()"
    proc = subprocess.Popen([sys.executable, "-c", burn, "worker", "--queues", f"{queue},{queue}.cpu"])
    try:
        from cli.bench.cpu import cpu_seconds, find_workers

        deadline = time.monotonic() + 30
        while not find_workers(queue) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert find_workers(queue) == [proc.pid]
        assert find_workers(f"{queue}-other") == []
        first = cpu_seconds([proc.pid])
        while cpu_seconds([proc.pid]) <= first and time.monotonic() < deadline:  # its child keeps burning
            time.sleep(0.05)
        assert cpu_seconds([proc.pid]) > first
    finally:
        for child in subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split():
            os.kill(int(child), 9)
        proc.kill()
        proc.wait()
    assert cpu_seconds([proc.pid]) == 0  # gone: nothing to count


def test_bench_says_when_the_service_is_not_there():
    done = bench(f"http://127.0.0.1:{free_port()}", "--jobs", "2")
    assert done.returncode == 1 and "not reachable" in done.stderr
    assert "bench:" in done.stderr and "Traceback" not in done.stderr


def test_bench_images_names_the_fix_for_a_folder_without_photos(tmp_path):
    done = bench(f"http://127.0.0.1:{free_port()}", "--images", str(tmp_path))
    assert done.returncode == 1 and "point it at a folder of photos" in done.stderr


def test_own_images_are_repeated_in_order_to_fill_the_jobs(tmp_path):
    from cli.bench.images import load_images

    for name, data in (("a.jpg", b"A"), ("b.png", b"B"), ("notes.txt", b"T"), (".hidden.jpg", b"H")):
        (tmp_path / name).write_bytes(data)
    assert load_images(str(tmp_path)) == [b"A", b"B"]
    assert load_images(str(tmp_path), 5) == [b"A", b"B", b"A", b"B", b"A"]


def test_the_table_names_every_figure_and_shows_missing_ones_as_na():
    record = {key: 1.0 for _, key, _ in ROWS} | {"jobs": 3, "failed_jobs": 0, "concurrency": 2, "backbone": "tiny",
                                                 "weights": "random", "batch_size": 4, "device": "CPU"}
    record["bare_celery_tasks_per_s"] = None
    text = table(record)
    assert all(label in text for label, _, _ in ROWS)
    assert "n/a" in text and "tiny (random), batch 4" in text
