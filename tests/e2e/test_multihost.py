"""Beyond one machine: four "hosts" (network namespaces on a bridge of their own) and no shared disk.

services: redis-server, a PostgreSQL cluster (initdb/pg_ctl) and moto's S3 server; web: `dogbreed web`;
worker-a and worker-b: `dogbreed worker --gpus cpu`, each with its own empty var/. Images go through
the bucket, so does the model the web host publishes; each worker downloads it once.
"""
from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import pytest

from tests.helpers import netns
from tests.helpers.s3 import CREDENTIALS, MotoServer
from tests.helpers.services import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
BUCKET = "dogbreed-lab"
JOBS = 12


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class Postgres:
    """A throw-away cluster owned by the `postgres` user (initdb refuses root), trusting the lab's subnet."""

    def __init__(self, lab: netns.Lab, host: str, address: str) -> None:
        self.lab, self.host, self.address = lab, host, address
        self.bin = postgres_bin()
        self.root = Path(tempfile.mkdtemp(prefix="dogbreed-pg-"))
        self.data = self.root / "data"

    def _as_postgres(self, *argv: str, timeout_s: float = 120) -> None:
        cmd = self.lab.argv(self.host, ["runuser", "-u", "postgres", "--", *argv])
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, cwd=self.root)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:2])} failed: {result.stdout}{result.stderr}")

    def start(self) -> None:
        self.root.chmod(0o755)
        shutil.chown(self.root, "postgres", "postgres")
        self._as_postgres(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8")
        with open(self.data / "pg_hba.conf", "a") as fh:
            fh.write(f"host all all {netns.SUBNET}.0/24 trust\n")
        options = f"-c listen_addresses={self.address} -p 5432 -k {self.root} -c fsync=off"
        self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "pg.log"),
                          "-w", "-t", "60", "-o", options, "start")
        self._as_postgres(str(self.bin / "createdb"), "-h", self.address, "-U", "postgres", "dogbreed")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop",
                                  timeout_s=60)
            except (RuntimeError, subprocess.TimeoutExpired):
                pid = int((self.data / "postmaster.pid").read_text().split()[0])
                os.kill(pid, 9)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def lab():
    reason = netns.probe()
    if reason:
        pytest.skip(f"cannot build network namespaces here: {reason}")
    for tool in ("redis-server", "unshare", "runuser"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not on PATH")
    if postgres_bin() is None:
        pytest.skip("no PostgreSQL binaries under /usr/lib/postgresql/*/bin (apt-get install postgresql)")
    lab = netns.Lab()
    try:
        lab.start()
        yield lab
    finally:
        lab.close()


def test_jobs_and_a_published_model_reach_workers_on_two_other_hosts(lab):
    root = Path(tempfile.mkdtemp(prefix="dogbreed-lab-"))  # /tmp: the postgres user must reach it too
    logs = root / "logs"
    logs.mkdir()
    services = lab.add_host("services")
    web_address = lab.add_host("web")
    lab.add_host("worker-a")
    lab.add_host("worker-b")
    postgres = Postgres(lab, "services", services)
    moto = MotoServer(logs / "moto.log", host=services, port=9000, prefix=lab.argv("services", []))
    try:
        postgres.start()
        lab.spawn("services", ["redis-server", "--bind", services, "--port", "6379", "--save", "",
                               "--appendonly", "no", "--protected-mode", "no"], dict(os.environ), logs / "redis.log")
        moto.start()

        base = {k: v for k, v in os.environ.items() if not k.startswith("DOGBREED_")}
        base.update(CREDENTIALS, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="-1",
                    PYTHONUNBUFFERED="1", DOGBREED_DATABASE_URL=f"postgresql+psycopg://postgres@{services}:5432/dogbreed",
                    DOGBREED_BROKER_URL=f"redis://{services}:6379/0", DOGBREED_STORAGE_URL=f"s3://{BUCKET}/lab",
                    DOGBREED_S3_ENDPOINT_URL=f"http://{services}:9000", DOGBREED_BACKBONE="tiny",
                    DOGBREED_BACKBONE_WEIGHTS="random", DOGBREED_SECRET_KEY="lab",
                    DOGBREED_MAX_BATCH="4", DOGBREED_LOG_FORMAT="json")

        def env_of(host: str, **extra: str) -> dict[str, str]:
            var = root / host / "var"
            var.mkdir(parents=True, exist_ok=True)
            return {**base, "DOGBREED_VAR_DIR": str(var), **extra}

        web_env = env_of("web", DOGBREED_HOST=web_address, DOGBREED_PORT="8000")
        url = f"http://{web_address}:8000"

        def client(*args: str, host: str = "web") -> dict:
            result = lab.run(host, [sys.executable, "-m", "tests.helpers.lab_client", *args], web_env, 300, cwd=ROOT)
            assert result.returncode == 0, f"lab_client {args[0]}: {result.stdout}{result.stderr}"
            return json.loads(result.stdout.strip().splitlines()[-1])

        client("create-bucket", BUCKET)
        migrated = lab.run("web", [sys.executable, "-m", "cli.main", "db", "upgrade"], web_env, 120, cwd=ROOT)
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        # Accounts stay on: a web beyond loopback refuses to run without them.
        for argv in (["users", "create", "lab"], ["keys", "create", "lab"]):
            made = lab.run("web", [sys.executable, "-m", "cli.main", *argv], web_env, 60, cwd=ROOT)
            assert made.returncode == 0, made.stdout + made.stderr
        web_env["DOGBREED_API_KEY"] = made.stdout.strip().splitlines()[-1]
        lab.spawn("web", [sys.executable, "-m", "cli.main", "web", "--workers", "1"], web_env, logs / "web.log", ROOT)
        for host in ("worker-a", "worker-b"):
            lab.spawn(host, [sys.executable, "-m", "cli.main", "worker", "--gpus", "cpu"], env_of(host),
                      logs / f"{host}.log", ROOT)
        client("wait-web", url)
        nodes = client("wait-workers", "2")["workers"]
        print(f"\nhosts: services {services}, web {web_address}; workers answering: {nodes}")

        first = client("wait-jobs", *client("submit", url, str(JOBS))["ids"])["jobs"]
        spread = Counter(job["node"] for job in first)
        print(f"{JOBS} jobs before publishing: {dict(Counter(j['status'] for j in first))}, by worker {dict(spread)}")
        assert all(job["status"] == "succeeded" for job in first), first
        assert set(spread) == {"cpu@worker-a", "cpu@worker-b"}, f"not spread over both workers: {spread}"

        from tests.helpers.models import write_head_folder

        folder = write_head_folder(root / "web" / "run")
        published = lab.run("web", [sys.executable, "-m", "cli.main", "models", "publish", str(folder),
                                    "--name", "lab-v1"], web_env, 180, cwd=ROOT)
        assert published.returncode == 0, published.stdout + published.stderr
        activated = lab.run("web", [sys.executable, "-m", "cli.main", "models", "activate", "lab-v1"], web_env, 60,
                            cwd=ROOT)
        assert activated.returncode == 0, activated.stdout + activated.stderr
        print(published.stdout.strip() + "\n" + activated.stdout.strip())

        second, deadline_rounds = [], 6
        seen: Counter = Counter()
        for _ in range(deadline_rounds):  # workers switch within a second; jobs sent meanwhile may still say None
            wave = client("wait-jobs", *client("submit", url, str(JOBS))["ids"])["jobs"]
            second = [j for j in wave if j["model_version"] == "lab-v1"]
            seen = Counter(j["node"] for j in second)
            if set(seen) == {"cpu@worker-a", "cpu@worker-b"}:
                break
        print(f"{JOBS} jobs after activating lab-v1: answered with lab-v1 by {dict(seen)}")
        assert set(seen) == {"cpu@worker-a", "cpu@worker-b"}, "both workers answer with the published model"
        assert all(job["status"] == "succeeded" for job in wave), wave

        for host in ("worker-a", "worker-b"):
            var = root / host / "var"
            fetched = var / "models" / "lab-v1" / "manifest.json"
            images = [p for p in var.rglob("*") if p.suffix in (".jpg", ".jpeg", ".png")]
            print(f"{host}: fetched {fetched.relative_to(root)}: {fetched.is_file()}; image files under var/: {len(images)}")
            assert fetched.is_file() and images == []
        lines = (logs / "worker-a.log").read_text(errors="replace").splitlines()
        records = [json.loads(line) for line in lines if line.startswith("{")]
        joined = [r for r in records if r["job_id"] in {j["id"] for j in first} and r["request_id"]]
        print(f"worker-a JSON log lines: {len(records)}; e.g. {json.dumps(joined[0]) if joined else None}")
        assert joined and all(r["node"] == "cpu@worker-a" for r in joined), "job and request ids reach the worker's log"
    except BaseException:
        for log in sorted(logs.glob("*.log")):
            print(f"---- {log.name} ----\n{log.read_text(errors='replace')[-3000:]}")
        raise
    finally:
        postgres.stop()  # inside its namespace, so before the namespaces go
        moto.stop()
        lab.close()
        shutil.rmtree(root, ignore_errors=True)
