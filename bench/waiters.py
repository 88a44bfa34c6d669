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



def wait_healthy(url: str, tries: int = 300) -> None:
    """Until the web answers /healthz (about a minute at most)."""
    for _ in range(tries):
        try:
            if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            time.sleep(0.2)

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
    return statistics.median(submit_times(session, url, count, seed))


def submit_times(session: requests.Session, url: str, count: int, seed: int) -> list[float]:
    """Milliseconds per submit, one after another."""
    times = []
    for i in range(count):
        start = time.perf_counter()
        answer = session.post(f"{url}/api/v1/jobs", files={"image": ("b.jpg", jpeg(seed + i))}, timeout=60)
        times.append(time.perf_counter() - start)
        if answer.status_code != 202:
            raise SystemExit(f"submit answered {answer.status_code}: {answer.text[:200]}")
    return [t * 1000 for t in times]


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
                streams: bool, submits: int) -> tuple[float, float, float, float]:
    """Another server model for the same app: submit p50 without `waiters` open, the first submit's time
    once they are, the p50 of `submits` with them, and RSS (MiB)."""
    from cli.broker import free_port

    port = free_port()
    web = subprocess.Popen([sys.executable, "-m", "gunicorn", "--graceful-timeout", "5", *gunicorn, "--bind",
                            f"127.0.0.1:{port}", "web.wsgi:app"], cwd=ROOT, env=env, start_new_session=True,
                           stdout=open(tmp / "web-other.log", "wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url)
        session = requests.Session()
        held = session.post(f"{url}/api/v1/jobs", files={"image": ("held.jpg", jpeg(0))}, timeout=30).json()
        submit_p50(session, url, 10, 20_000)
        without = submit_p50(session, url, 20, 30_000)
        socks = open_waiters(port, held["id"], waiters, wait_s=wait_s, streams=streams)
        time.sleep(2.0)
        first = submit_p50(requests.Session(), url, 1, 40_000)
        with_ = submit_p50(requests.Session(), url, submits, 50_000)
        rss = rss_mib(web.pid)
        for sock in socks:
            sock.close()
        return without, first, with_, rss
    finally:
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waiters", type=int, default=500)
    parser.add_argument("--submits", type=int, default=90, help="submits timed each way, over --rounds")
    parser.add_argument("--rounds", type=int, default=3)
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
        wait_healthy(url)
        session = requests.Session()
        submit_p50(session, url, 10, 10_000)  # warm both processes
        rss_idle = rss_mib(web.pid)
        # Rounds of (without, with) one after the other, so that the machine's other load falls on both alike.
        without: list[float] = []
        with_: list[float] = []
        rss_waiting = rss_after = 0.0
        ended = refused = 0
        woke_s: list[float] = []
        per_round = max(1, args.submits // args.rounds)
        for r in range(args.rounds):
            held = session.post(f"{url}/api/v1/jobs", files={"image": ("held.jpg", jpeg(r))}, timeout=30).json()
            without += submit_times(session, url, per_round, 100_000 * (r + 1))
            socks = open_waiters(port, held["id"], args.waiters)
            time.sleep(2.0)  # let every connection reach its slot
            rss_waiting = max(rss_waiting, rss_mib(web.pid))
            with_ += submit_times(session, url, per_round, 100_000 * (r + 1) + 50_000)
            rss_after = max(rss_after, rss_mib(web.pid))
            start = time.perf_counter()
            session.delete(f"{url}/api/v1/jobs/{held['id']}", timeout=30)
            woken, refusals = answered(socks, 60)
            woke_s.append(time.perf_counter() - start)
            ended, refused = ended + woken, refused + refusals
        p50_without, p50_with = statistics.median(without), statistics.median(with_)
        print(f"waiters: {args.waiters} open (half ?wait=60, half /events), 2 gunicorn gthread processes, "
              f"DOGBREED_MAX_WAITERS={settings.max_waiters} each; {args.rounds} rounds of {per_round} submits each way")
        print(f"submit p50: {p50_without:.1f} ms without waiters, {p50_with:.1f} ms with them: ratio "
              f"{p50_with / p50_without:.2f} (target <= 1.2)")
        print(f"web RSS (master + workers): {rss_idle:.0f} MiB idle, at most {rss_waiting:.0f} MiB with the waiters "
              f"open, {rss_after:.0f} MiB after the submits")
        print(f"each round's cancel woke its waiters: {ended} of {args.rounds * args.waiters} answered, slowest round "
              f"{max(woke_s):.2f}s ({refused} refused at the cap)")
        if args.old_model:
            old_without, old_first, _, _ = other_model(env, tmp, ["--workers", "1", "--threads", "4"], 8, 5,
                                                       streams=False, submits=1)
            print(f"the model before (gthread, 4 threads a process, none for waiters), 8 long polls (?wait=5) open on one process: "
                  f"submit p50 {old_without:.1f} ms without; the first submit with them took {old_first:.0f} ms "
                  "(it waits for a thread)")
        if args.gevent:
            gevent_env = {**env, "PYTHONPATH": f"{ROOT}:{args.gevent}"}
            g_without, _, g_with, g_rss = other_model(gevent_env, tmp, ["--workers", "2", "-k", "gevent",
                                                                        "--worker-connections", "1000"],
                                                      args.waiters, 60, streams=True, submits=args.submits)
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
