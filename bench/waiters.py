"""Many waiters, bounded: do 500 open long polls and event streams slow the submits down?

Starts a real `dogbreed web` (gunicorn gthread, 2 processes) on loopback with a fresh SQLite
database and the Redis on 127.0.0.1:6379, and no worker, so one job stays queued and every waiter
on it stays open. Times --submits sequential submits with nothing waiting, then opens --waiters
connections on that job (half `GET ?wait=60`, half `/events` streams; raw sockets, so the client
costs nearly nothing), times the same submits again with them open, reads the gunicorn processes'
RSS, then cancels the job and counts the waiters it wakes. Prints both p50s, their ratio (target
<= 1.2) and the memory. With --polls it also starts a worker (the `tiny` stand-in backbone) and
counts the GETs per job of the old polling client against sync mode (`Prefer: wait`).

    PYTHONPATH=. .venv/bin/python bench/waiters.py [--waiters 500] [--submits 60] [--polls]
"""
from __future__ import annotations

import argparse
import io
import os
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def jpeg(seed: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (96, 64), ((seed * 37) % 256, (seed * 91) % 256, 120)).save(buf, "JPEG")
    return buf.getvalue()


def rss_mib(root_pid: int) -> float:
    """RSS of a process and its children (gunicorn's master and workers), MiB."""
    total = 0
    pids = [root_pid]
    out = subprocess.run(["pgrep", "-P", str(root_pid)], capture_output=True, text=True).stdout.split()
    for child in out:
        pids.append(int(child))
        pids += [int(p) for p in subprocess.run(["pgrep", "-P", child], capture_output=True, text=True).stdout.split()]
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def submit_p50(session: requests.Session, url: str, count: int, seed: int) -> float:
    times = []
    for i in range(count):
        start = time.perf_counter()
        answer = session.post(f"{url}/api/v1/jobs", files={"image": ("b.jpg", jpeg(seed + i))}, timeout=60)
        times.append(time.perf_counter() - start)
        if answer.status_code != 202:
            raise SystemExit(f"submit answered {answer.status_code}: {answer.text[:200]}")
    return statistics.median(times) * 1000


def open_waiters(port: int, job_id: str, count: int, wait_s: int = 60, streams: bool = True) -> list[socket.socket]:
    """Half long polls, half event streams (or long polls alone)."""
    socks = []
    for i in range(count):
        path = f"/api/v1/jobs/{job_id}/events" if streams and i % 2 == 0 else f"/api/v1/jobs/{job_id}?wait={wait_s}"
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n\r\n".encode())
        socks.append(sock)
    return socks


def answered(socks: list[socket.socket], timeout_s: float) -> tuple[int, int]:
    """How many waiters got their end (a 200 with `canceled`), and how many were refused (503)."""
    selector = selectors.DefaultSelector()
    seen = {sock: b"" for sock in socks}
    for sock in socks:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout_s
    open_ = set(socks)
    while open_ and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=1.0):
            sock = key.fileobj
            try:
                data = sock.recv(65536)  # type: ignore[union-attr]
            except BlockingIOError:
                continue
            seen[sock] += data  # type: ignore[index]
            if not data or b'"canceled"' in seen[sock] or b" 503 " in seen[sock][:20]:  # type: ignore[index]
                selector.unregister(sock)
                open_.discard(sock)  # type: ignore[arg-type]
    for sock in socks:
        sock.close()
    ended = sum(b'"canceled"' in body for body in seen.values())
    refused = sum(b" 503 " in body[:20] for body in seen.values())
    return ended, refused


def polls_per_job(url: str, count: int, concurrency: int) -> tuple[float, float]:
    """GETs per job, `concurrency` clients closed loop as `dogbreed bench` runs them: the old client
    (submit, then sleep-and-GET with cli.client.Poll's backoff) and sync mode (bench's run_many)."""
    from concurrent.futures import ThreadPoolExecutor

    from cli.bench.client import Client
    from cli.client import ENDED, Poll

    def old_way(i: int) -> int:
        with requests.Session() as session:
            job = session.post(f"{url}/api/v1/jobs", files={"image": ("p.jpg", jpeg(1000 + i))}, timeout=60).json()
            for polls, interval in enumerate(Poll().intervals(), 1):
                time.sleep(interval)
                if session.get(job["url"], timeout=30).json()["status"] in ENDED:
                    return polls
        raise AssertionError("unreachable")

    with ThreadPoolExecutor(concurrency) as pool:
        before = list(pool.map(old_way, range(count)))
    after = Client(url).run_many([jpeg(2000 + i) for i in range(count)], concurrency).polls_per_job
    return statistics.mean(before), after


def other_model(env: dict[str, str], tmp: Path, gunicorn: list[str], waiters: int, wait_s: int,
                streams: bool) -> tuple[float, float, float]:
    """Another server model for the same app: submit p50 without and with `waiters` open, and RSS (MiB)."""
    from cli.broker import free_port

    port = free_port()
    web = subprocess.Popen([sys.executable, "-m", "gunicorn", "--workers", "2", *gunicorn, "--bind",
                            f"127.0.0.1:{port}", "web.wsgi:app"], cwd=ROOT, env=env, start_new_session=True,
                           stdout=open(tmp / "web-other.log", "wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        session = requests.Session()
        held = session.post(f"{url}/api/v1/jobs", files={"image": ("held.jpg", jpeg(0))}, timeout=30).json()
        submit_p50(session, url, 10, 20_000)
        without = submit_p50(session, url, 20, 30_000)
        socks = open_waiters(port, held["id"], waiters, wait_s=wait_s, streams=streams)
        time.sleep(2.0)
        with_ = submit_p50(requests.Session(), url, 3 if not streams else 20, 40_000)
        rss = rss_mib(web.pid)
        for sock in socks:
            sock.close()
        return without, with_, rss
    finally:
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waiters", type=int, default=500)
    parser.add_argument("--submits", type=int, default=60)
    parser.add_argument("--polls", type=int, default=0, metavar="JOBS", help="also count polls per job over JOBS jobs")
    parser.add_argument("--concurrency", type=int, default=32, help="clients at once for --polls (bench's default)")
    parser.add_argument("--old-model", action="store_true", help="also time submits on the server model before "
                                                                 "(gthread, 4 threads) with 16 long polls open")
    parser.add_argument("--gevent", metavar="DIR", help="also time gunicorn's gevent worker with the same waiters "
                                                        "(gevent installed under DIR: it is not a dependency)")
    args = parser.parse_args()

    from cli.broker import free_port
    from shared.settings import Settings
    from tests.helpers.services import settings_env

    tmp = Path(tempfile.mkdtemp(prefix="dogbreed-waiters-"))
    port = free_port()
    settings = Settings(var_dir=tmp / "var", database_url=f"sqlite:///{tmp}/db.sqlite", storage_dir=tmp / "images",
                        model_dir=tmp / "models", backbone="tiny", backbone_weights="random", secret_key="bench",
                        auth_required=False, broker_url="redis://127.0.0.1:6379/0", queue=f"bench-waiters-{os.getpid()}",
                        rate_limit_per_minute=0, port=port, max_waiters=args.waiters)
    env = {**os.environ, **settings_env(settings), "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "cli.main", "db", "upgrade"], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    web = subprocess.Popen([sys.executable, "-m", "cli.main", "web", "--workers", "2"], cwd=ROOT, env=env,
                           stdout=open(tmp / "web.log", "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    worker = None
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        session = requests.Session()
        held = session.post(f"{url}/api/v1/jobs", files={"image": ("held.jpg", jpeg(0))}, timeout=30).json()
        submit_p50(session, url, 10, 10_000)  # warm both processes
        rss_idle = rss_mib(web.pid)
        without = submit_p50(session, url, args.submits, 1)
        socks = open_waiters(port, held["id"], args.waiters)
        time.sleep(2.0)  # let every connection reach its slot
        rss_waiting = rss_mib(web.pid)
        with_ = submit_p50(session, url, args.submits, 1 + args.submits)
        rss_after = rss_mib(web.pid)
        start = time.perf_counter()
        session.delete(f"{url}/api/v1/jobs/{held['id']}", timeout=30)
        ended, refused = answered(socks, 60)
        woke_s = time.perf_counter() - start
        print(f"waiters: {args.waiters} open (half ?wait=60, half /events), 2 gunicorn gthread processes, "
              f"DOGBREED_MAX_WAITERS={settings.max_waiters} each")
        print(f"submit p50: {without:.1f} ms without waiters, {with_:.1f} ms with them: ratio {with_ / without:.2f} "
              "(target <= 1.2)")
        print(f"web RSS (master + workers): {rss_idle:.0f} MiB idle, {rss_waiting:.0f} MiB with the waiters open, "
              f"{rss_after:.0f} MiB after the submits")
        print(f"one cancel woke {ended} of {args.waiters} waiters in {woke_s:.2f}s ({refused} refused at the cap)")
        if args.old_model:
            old_without, old_with, _ = other_model(env, tmp, ["--threads", "4"], 16, 5, streams=False)
            print(f"the model before (gthread, 2 x 4 threads, no waiter threads), 16 long polls (?wait=5) open: "
                  f"submit p50 {old_without:.1f} ms without, {old_with:.1f} ms with them "
                  f"(ratio {old_with / old_without:.1f})")
        if args.gevent:
            gevent_env = {**env, "PYTHONPATH": f"{ROOT}:{args.gevent}"}
            g_without, g_with, g_rss = other_model(gevent_env, tmp, ["-k", "gevent", "--worker-connections", "1000"],
                                                   args.waiters, 60, streams=True)
            print(f"gevent worker (2 processes): submit p50 {g_without:.1f} ms without, {g_with:.1f} ms with "
                  f"{args.waiters} waiters (ratio {g_with / g_without:.2f}); RSS {g_rss:.0f} MiB with them open")
        if args.polls:
            worker = subprocess.Popen([sys.executable, "-m", "cli.main", "worker", "--node", f"bench@{os.getpid()}",
                                       "--queues", settings.queue], cwd=ROOT, env=env, start_new_session=True,
                                      stdout=open(tmp / "worker.log", "wb"), stderr=subprocess.STDOUT)
            from cli.bench.client import Client

            Client(url).run_one(jpeg(99))  # the worker loads its model first
            before, after = polls_per_job(url, args.polls, args.concurrency)
            print(f"polls per job: {before:.1f} with the old polling client, {after:.1f} with sync mode "
                  f"(dogbreed bench's run_many), {args.polls} jobs each, {args.concurrency} clients")
    finally:
        for proc in (worker, web):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
