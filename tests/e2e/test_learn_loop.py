"""Issue 20's whole loop on real parts: photos uploaded to a real gunicorn, named by a real worker on
the real EfficientNet-Lite2 weights, corrected by their owner through the API, `dogbreed models
learn --activate` as its own process, and the same running worker then names a breed it did not know."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.helpers.live import GunicornWeb
from tests.helpers.services import REAL_MODELS, ROOT, WorkerProcess, settings_env, wait_for

LITE2 = REAL_MODELS / "efficientnet_lite2_imagenet.keras"
NEW_BREED = "Bichon frise"  # not among ImageNet's 118 dog classes
# What the owners type: another spelling of the same breed must land on one name.
CORRECTIONS = {"dogs/Bichon_frise/wiki__bichon_frise_0.jpg": "bichon frise",
               "dogs/Bichon_frise/wiki__bichon_frise_1.jpg": "Bichon Frise",
               "dogs/Bichon_frise/wiki__bichon_frise_2.jpg": "bichon-frise",
               "dogs/Bichon_frise/wiki__bichon_frise_3.jpg": "BICHON FRISE dog",
               "dogs/Keeshond/wiki__keeshond_1.jpg": "keeshond",
               "dogs/Keeshond/wiki__keeshond_2.jpg": "Keeshond",
               "dogs/Chow_chow/wiki__chow_chow_0.jpg": "chow chow"}
UNSEEN = "dogs/Bichon_frise/wiki__bichon_frise_4.jpg"  # never uploaded before learning


@pytest.fixture
def database_url(sqlite_url) -> str:
    """One database is enough here: the loop's SQL is covered on both by the tests of its parts."""
    return sqlite_url


@pytest.fixture
def lite2_settings(settings, real_data, tmp_path):
    if not LITE2.is_file():
        pytest.skip(f"{LITE2} is absent (only the team's checkout has the real weights)")
    return settings.with_(backbone="efficientnet_lite2", backbone_weights=str(LITE2),
                          feature_cache_dir=tmp_path / "features")


def answer(http: requests.Session, url: str, path: Path) -> dict:
    """Submit in sync mode; the job's finished JSON."""
    response = http.post(f"{url}/api/v1/jobs", files={"image": (path.name, path.read_bytes())},
                         headers={"Prefer": "wait=60"}, timeout=90)
    assert response.status_code in (200, 202), response.text
    job = response.json()
    if job["status"] in ("queued", "running"):
        job = http.get(f"{url}/api/v1/jobs/{job['id']}?wait=60", timeout=90).json()
    assert job["status"] == "succeeded", job
    return job


def test_corrections_become_a_breed_the_running_worker_names(lite2_settings, real_data, tmp_path):
    worker = WorkerProcess(lite2_settings, tmp_path / "worker.log")
    worker.start(timeout_s=240)
    web = GunicornWeb(lite2_settings, tmp_path)
    try:
        with web.session() as http:
            before = answer(http, web.url, real_data / UNSEEN)
            assert before["result"]["kind"] == "dog"
            assert before["result"]["breeds"][0]["breed"] != NEW_BREED  # it cannot know it yet

            for photo, typed in CORRECTIONS.items():
                job = answer(http, web.url, real_data / photo)
                labeled = http.put(f"{web.url}/api/v1/jobs/{job['id']}/label", json={"breed": typed}, timeout=30)
                assert labeled.status_code == 200, labeled.text
            names = {http.get(f"{web.url}/api/v1/jobs?labeled=true&per_page=20", timeout=30).json()["jobs"][i]
                     ["label"]["breed"] for i in range(len(CORRECTIONS))}
            assert names == {NEW_BREED, "Keeshond", "Chow chow"}

            env = {**os.environ, **settings_env(lite2_settings), "PYTHONPATH": str(ROOT)}
            learned = subprocess.run([sys.executable, "-m", "cli.main", "models", "learn", "--name", "owners-1",
                                      "--activate"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
            assert learned.returncode == 0, learned.stdout + learned.stderr
            assert "owners-1 is active" in learned.stdout, learned.stdout

            breeds = http.get(f"{web.url}/api/v1/breeds", timeout=30).json()
            assert breeds["model_version"] == "owners-1"
            assert {"name": NEW_BREED, "photos": 4} in breeds["breeds"]
            assert len(breeds["breeds"]) == 118 + 1

            def answered_by_the_new_version() -> dict | None:
                job = answer(http, web.url, real_data / UNSEEN)
                return job if job["result"]["model"]["model_version"] == "owners-1" else None

            after = wait_for(answered_by_the_new_version, 120, 1.0, "the worker to follow the activated version")
            assert after["result"]["breeds"][0]["breed"] == NEW_BREED, after["result"]
            assert after["result"]["kind"] == "dog"
    finally:
        web.stop()
        worker.stop()
