"""`dogbreed classify PATH...`: send photos (a folder goes as albums) to a running service, print the answers.

A table on stdout, or one JSON object per file with --json; a progress bar on stderr while waiting.
Exits 1 when any file was refused or any job did not succeed, so scripts can rely on it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cli.client import ENDED, Client, ServiceError, sorted_out
from shared.formats import IMAGE_SUFFIXES


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files, or folders (sent as albums)")
    parser.add_argument("--url", default=os.environ.get("DOGBREED_URL"),
                        help="the service, e.g. http://127.0.0.1:8000 (default: env DOGBREED_URL)")
    parser.add_argument("--api-key", default=os.environ.get("DOGBREED_API_KEY"),
                        help="API key when auth is on (default: env DOGBREED_API_KEY)")
    parser.add_argument("--wait", action="store_true", help="wait for the results (else print the queued jobs)")
    parser.add_argument("--json", action="store_true", help="one JSON object per file instead of a table")
    parser.add_argument("--album-size", type=int, default=32,
                        help="files per album request (default 32, the service's DOGBREED_MAX_FILES_PER_REQUEST)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for all results (default 600)")


@dataclass
class Entry:
    """One file sent: its job (as last seen) or why it was refused."""

    path: str
    job: dict[str, Any] | None = None
    error: dict[str, str] | None = None
    album_url: str | None = None

    @property
    def ended(self) -> bool:
        return self.job is None or self.job["status"] in ENDED

    @property
    def ok(self) -> bool:
        return self.job is not None and self.job["status"] in ("succeeded", "queued", "running")

    def record(self) -> dict[str, Any]:
        return {"file": self.path, "job": self.job} if self.job else {"file": self.path, "error": self.error}

    def row(self) -> tuple[str, str, str, str]:
        if self.job is None:
            return self.path, "-", "rejected", self.error["message"] if self.error else ""
        job = self.job
        answer = (job.get("result") or {}).get("sentence") or (job.get("error") or {}).get("message") or ""
        return self.path, job["id"], job["status"], answer


def collect(paths: list[str]) -> tuple[list[Path], list[list[Path]]]:
    """Files to send alone, and folders' photos (each folder one or more albums)."""
    singles: list[Path] = []
    folders: list[list[Path]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found, others = sorted_out(path)
            for other in others:
                print(f"dogbreed classify: skipped {other}: not one of the formats the service accepts "
                      f"({', '.join(sorted(IMAGE_SUFFIXES))})", file=sys.stderr)
            if not found:
                raise SystemExit(f"dogbreed classify: {raw} holds no {', '.join(sorted(IMAGE_SUFFIXES))} files")
            folders.append(found)
        elif path.is_file():
            singles.append(path)
        else:
            raise SystemExit(f"dogbreed classify: {raw} is not a file or a folder; check the path")
    return singles, folders


def send(client: Client, singles: list[Path], folders: list[list[Path]], album_size: int) -> list[Entry]:
    entries: list[Entry] = []
    for path in singles:
        try:
            entries.append(Entry(str(path), job=client.submit(path.read_bytes(), path.name)))
        except ServiceError as exc:
            if exc.status is None or exc.status >= 500 or exc.status in (401, 429):
                raise  # the service, not the file: stop and say so
            entries.append(Entry(str(path), error={"code": exc.code or "refused", "message": str(exc)}))
    for files in folders:
        for start in range(0, len(files), album_size):
            chunk = files[start:start + album_size]
            album = client.submit_album([(p.name, p.read_bytes()) for p in chunk])
            for path, item in zip(chunk, album["jobs"]):
                if "status" in item:
                    entries.append(Entry(str(path), job=item, album_url=album["url"]))
                else:
                    entries.append(Entry(str(path), error=item["error"]))
    return entries


WAITING_AT_ONCE = 8  # long polls open at once: each holds one of the server's waiter slots


def wait(client: Client, entries: list[Entry], timeout_s: float) -> None:
    """Wait for each album and each lone job with long polls (`?wait=`: the service answers when it
    ends, no polling loop), a few at once; progress on stderr as each ends."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

    from tqdm import tqdm

    client.timeout_s = timeout_s
    albums: dict[str, list[Entry]] = {}
    lone: list[Entry] = []
    for entry in entries:
        if not entry.ended:
            (albums.setdefault(entry.album_url, []) if entry.album_url else lone).append(entry)

    def album(url: str) -> None:
        found = {j["id"]: j for j in client.wait_album(url)["jobs"] if "id" in j}
        for entry in albums[url]:
            entry.job = found.get(entry.job["id"], entry.job)

    def job(entry: Entry) -> None:
        entry.job = client.wait(entry.job)[0]

    with tqdm(total=len(entries), desc="classify", unit="image", file=sys.stderr) as bar, \
            ThreadPoolExecutor(max_workers=WAITING_AT_ONCE, thread_name_prefix="classify-wait") as pool:
        bar.update(sum(e.ended for e in entries))
        waits = {pool.submit(album, url): len(group) for url, group in albums.items()}
        waits.update({pool.submit(job, entry): 1 for entry in lone})
        for done in as_completed(waits):
            done.result()  # a ServiceError (not reachable, or not ended in time) stops here
            bar.update(waits[done])


def table(entries: list[Entry]) -> str:
    rows = [("FILE", "JOB", "STATUS", "ANSWER"), *(e.row() for e in entries)]
    widths = [min(max(len(r[i]) for r in rows), 48) for i in range(3)]
    return "\n".join(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}" for r in rows)


def run(args: argparse.Namespace) -> int:
    if not args.url:
        print("dogbreed classify: pass --url (e.g. --url http://127.0.0.1:8000) or set DOGBREED_URL", file=sys.stderr)
        return 2
    if args.album_size < 1:
        print("dogbreed classify: --album-size must be at least 1", file=sys.stderr)
        return 2
    singles, folders = collect(args.paths)
    client = Client(args.url, args.api_key)
    try:
        entries = send(client, singles, folders, args.album_size)
        if args.wait:
            wait(client, entries, args.timeout)
    except ServiceError as exc:
        print(f"dogbreed classify: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print("\n".join(json.dumps(e.record()) for e in entries))
    else:
        print(table(entries))
    return 0 if all(e.ok for e in entries) else 1
