"""`dogbreed up` as a user runs it: one command, then HTTP only (gunicorn, worker, Flower, Redis)."""
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from cli.broker import free_port
from tests.helpers import images as make
from tests.helpers.openapi import checker
from tests.helpers.services import REAL_DATA, REAL_MODELS, ROOT, wait_for

pytestmark = pytest.mark.slow


class Up:
    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.port, self.flower_port = free_port(), free_port()
        self.log_path = cwd / "up.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "up", "--port", str(self.port), "--flower-port", str(self.flower_port)],
            cwd=cwd, env=env, stdout=open(self.log_path, "wb"), stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self.flower = f"http://127.0.0.1:{self.flower_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout_s: float = 120) -> None:
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"dogbreed up exited:\n{self.log()[-4000:]}")
            try:
                web = requests.get(f"{self.url}/readyz", timeout=2).status_code == 200
                # Flower records only the task events it is connected for: wait until it sees the worker.
                return web and "cpu@" in requests.get(f"{self.flower}/workers", timeout=2).text
            except requests.RequestException:
                return False

        wait_for(ready, timeout_s, 0.5, "the web app and Flower to be ready")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                return self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                raise
        return self.proc.returncode


@pytest.fixture
def up(tmp_path, redis_url):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOGBREED_")}
    env.update(PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="-1",
               DOGBREED_MAX_BATCH="4", DOGBREED_BROKER_URL=redis_url, DOGBREED_QUEUE=f"up-{uuid.uuid4().hex[:10]}")
    if (REAL_MODELS / "mobilenet_v2_imagenet.keras").is_file():
        env.update(DOGBREED_BACKBONE="mobilenet_v2", DOGBREED_BACKBONE_WEIGHTS=str(REAL_MODELS / "mobilenet_v2_imagenet.keras"))
    else:
        env.update(DOGBREED_BACKBONE="tiny", DOGBREED_BACKBONE_WEIGHTS="random")
    service = Up(tmp_path, env)
    try:
        service.wait_ready()
        yield service
    finally:
        service.stop()


def poll(session: requests.Session, url: str, timeout_s: float = 90) -> dict:
    def done():
        job = session.get(url, timeout=5).json()
        return job if job["status"] in ("succeeded", "failed") else None

    return wait_for(done, timeout_s, 0.3, f"{url} to finish")


def photos() -> list[tuple[str, bytes]]:
    if REAL_DATA.is_dir():
        picks = [next((REAL_DATA / "dogs" / "Beagle").glob("*")), sorted((REAL_DATA / "humans").glob("deepface__*"))[0],
                 sorted((REAL_DATA / "other").glob("imagenet__*"))[0]]
        return [(p.name, p.read_bytes()) for p in picks]
    return [(f"gen{i}.jpg", make.jpeg(200, 150, seed=i)) for i in range(3)]


def login(url: str, log: str) -> requests.Session:
    name, password = re.search(r"log in as:\s+(\S+) / (\S+)", log).groups()
    session = requests.Session()
    form = session.get(f"{url}/login", timeout=5).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    response = session.post(f"{url}/login", data={"name": name, "password": password, "csrf_token": csrf}, timeout=5)
    assert response.status_code == 200 and "Log out" in response.text
    return session


def test_up_serves_the_api_pages_and_flower_then_stops_cleanly(up, tmp_path):
    log = up.log()
    assert f"http://127.0.0.1:{up.port}/" in log and f"http://127.0.0.1:{up.flower_port}/" in log
    assert "broker:" in log and "database:" in log and "sqlite" in log
    key = (tmp_path / "var" / "local-api-key").read_text().strip()
    secret = tmp_path / "var" / "webhook-secret"
    assert secret.read_text().strip().startswith("whsec_") and secret.stat().st_mode & 0o777 == 0o600  # Standard Webhooks
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {key}"
    api.hooks["response"].append(checker().requests_hook)  # answers must match the OpenAPI document
    assert requests.get(f"{up.url}/api/v1/jobs", timeout=5).status_code == 401

    results = {}
    for name, data in photos():
        response = api.post(f"{up.url}/api/v1/jobs", files={"image": (name, data)}, timeout=10)
        assert response.status_code == 202, response.text
        results[name] = poll(api, response.json()["url"])
    assert all(job["status"] == "succeeded" for job in results.values()), results
    if REAL_DATA.is_dir() and "mobilenet" in log:
        kinds = [job["result"]["kind"] for job in results.values()]
        assert kinds == ["dog", "human", "neither"], kinds
        assert "Beagle" in [b["breed"] for b in list(results.values())[0]["result"]["breeds"]]

    # A person: log in, upload with the form, land on the job page, see it in the history.
    browser = login(up.url, log)
    form = browser.get(f"{up.url}/", timeout=5).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    name, data = photos()[0]
    landed = browser.post(f"{up.url}/", files={"image": (name, data)}, data={"csrf_token": csrf}, timeout=10)
    assert landed.status_code == 200 and "/jobs/" in landed.url and "job.js" in landed.text
    job_id = landed.url.rsplit("/", 1)[1]
    history = browser.get(f"{up.url}/history", timeout=5).text
    assert job_id in history and all(j["id"] in history for j in results.values())
    image = browser.get(f"{up.url}/jobs/{job_id}/image", timeout=5)
    assert image.status_code == 200 and image.headers["X-Content-Type-Options"] == "nosniff"

    # Supervision: SIGKILL the worker's main process; `up` logs it, restarts it, and work goes on.
    worker_pid = int(re.search(r"started worker-cpu \(pid (\d+)\)", up.log()).group(1))
    os.kill(worker_pid, signal.SIGKILL)
    wait_for(lambda: re.search(r"worker-cpu exited with code -9; restarting in \d+ s", up.log()), 30, 0.3, "the restart log")
    wait_for(lambda: len(re.findall(r"started worker-cpu \(pid", up.log())) == 2, 30, 0.3, "the worker to restart")
    again = api.post(f"{up.url}/api/v1/jobs", files={"image": ("after.jpg", make.jpeg(seed=11))}, timeout=10)
    assert poll(api, again.json()["url"])["status"] == "succeeded"

    # Flower sees the workers (Up.wait_ready) and the tasks they ran, down to the job id.
    query = {"draw": 1, "start": 0, "length": 100, "order[0][column]": 0, "columns[0][data]": "name"}

    def flower_ran_it():
        rows = requests.get(f"{up.flower}/tasks/datatable", params=query, timeout=5).json()["data"]
        return any(r["name"] == "dogbreed.classify" and r["state"] == "SUCCESS" and r["uuid"] == again.json()["id"]
                   for r in rows)

    wait_for(flower_ran_it, 30, 0.5, "Flower to list the job's task")

    assert up.stop() == 0
    time.sleep(1)
    for port in (up.port, up.flower_port):
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/", timeout=2)


def child_pids(pid: int) -> set[int]:
    """Every descendant of `pid` (gunicorn, its workers, the Celery worker, Flower)."""
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout
    tree: dict[int, list[int]] = {}
    for line in out.splitlines():
        child, parent = map(int, line.split())
        tree.setdefault(parent, []).append(child)
    found, todo = set(), [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ", 1)[1].startswith("Z"))


def test_when_up_is_killed_its_children_go_too_and_the_ports_are_free(up):
    """SIGKILL (or a closed terminal) leaves no gunicorn, worker or Flower behind holding the ports."""
    children = child_pids(up.proc.pid)
    assert len(children) >= 3
    up.proc.kill()
    up.proc.wait()
    wait_for(lambda: not any(alive(pid) for pid in children), 60, 0.5, "every child of up to exit")
    for port in (up.port, up.flower_port):
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/", timeout=2)


def test_a_second_stop_signal_hurries_the_stop_instead_of_breaking_it(up):
    children = child_pids(up.proc.pid)
    up.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    up.proc.send_signal(signal.SIGTERM)
    assert up.proc.wait(timeout=60) == 0
    assert "Traceback" not in up.log()
    assert not any(alive(pid) for pid in children)


def test_no_flower_means_a_taken_flower_port_does_not_matter(tmp_path, redis_url):
    import socket

    env = {k: v for k, v in os.environ.items() if not k.startswith("DOGBREED_")}
    env.update(PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="-1", DOGBREED_BACKBONE="tiny",
               DOGBREED_BACKBONE_WEIGHTS="random", DOGBREED_BROKER_URL=redis_url,
               DOGBREED_QUEUE=f"up-{uuid.uuid4().hex[:10]}")
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "up", "--no-flower", "--port", str(port),
                             "--flower-port", str(taken.getsockname()[1])],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        def ready():
            assert proc.poll() is None, proc.stdout.read().decode()
            try:
                return requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_for(ready, 120, 0.5, "the web app to be ready")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        taken.close()
