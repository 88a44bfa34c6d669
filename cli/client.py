"""A small typed client for the dogbreed API, for `dogbreed classify`, `dogbreed bench` and scripts.

Jobs and albums come back as the API's JSON (dicts, described in /api/v1/openapi.json); every
refusal is a ServiceError carrying the API's error code and message. One requests session per
thread, so a client can be shared by a thread pool.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import requests

from shared.errors import DogbreedError
from shared.formats import IMAGE_SUFFIXES

LONG_POLL_S = 30  # each wait is one long poll (`?wait=`): the service answers when the job ends
Job = dict[str, Any]
Album = dict[str, Any]
ENDED = ("succeeded", "failed", "canceled")


class ServiceError(DogbreedError, RuntimeError):
    """The service refused (its code and status) or could not be reached (None for both); the message says what to fix."""

    status: int | None = None


@dataclass(frozen=True)
class Poll:
    """Polling backs off, so that many waiting clients do not take the CPU the service needs."""

    first_s: float = 0.05
    factor: float = 1.5
    max_s: float = 1.0  # at 32 clients and seconds of latency, 0.25 s polling took ~30% of a core here

    def intervals(self) -> Iterator[float]:
        wait = self.first_s
        while True:
            yield wait
            wait = min(self.max_s, wait * self.factor)


def api_error(response: requests.Response) -> tuple[str | None, str]:
    """The API's error code and a line to show; a body that is not the API's JSON shows as it is."""
    try:
        error = response.json()["error"]
        return error["code"], f"{error['code']}: {error['message']}"
    except Exception:
        return None, response.text[:200]


class Client:
    def __init__(self, url: str, api_key: str | None = None, timeout_s: float = 300,
                 hooks: list[Callable[..., Any]] | None = None) -> None:
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.hooks = hooks or []  # requests response hooks (tests check answers against the OpenAPI document)
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            if self.api_key:
                session.headers["Authorization"] = f"Bearer {self.api_key}"
            session.hooks["response"].extend(self.hooks)
        return session

    def _call(self, method: str, url: str, expect: tuple[int, ...], **kwargs: Any) -> requests.Response:
        try:
            response = self._session().request(method, url if "://" in url else self.url + url, **kwargs)
        except requests.RequestException as exc:
            raise ServiceError(None, f"{self.url} is not reachable ({type(exc).__name__}); is the service running?") from exc
        if response.status_code not in expect:
            code, text = api_error(response)
            raise ServiceError(code, f"{method} {url} answered {response.status_code}: {text}", response.status_code)
        return response

    # ---- jobs -------------------------------------------------------------------------------
    def submit(self, image: bytes, filename: str = "image.jpg", pipeline: str = "classify",
               callback_url: str | None = None, idempotency_key: str | None = None, wait_s: int | None = None) -> Job:
        """`wait_s`: sync mode (`Prefer: wait`), the job comes back ended if it ends within that time."""
        data = {"pipeline": pipeline} if pipeline != "classify" else {}
        if callback_url:
            data["callback_url"] = callback_url
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        if wait_s is not None:
            headers["Prefer"] = f"wait={wait_s}"
        return self._call("POST", "/api/v1/jobs", (200, 202), files={"image": (filename, image)}, data=data,
                          headers=headers, timeout=60 + (wait_s or 0)).json()

    def job(self, job: Job | str, wait_s: int | None = None) -> Job:
        """`wait_s`: a long poll, answered when the job ends or after that time."""
        params = {"wait": wait_s} if wait_s is not None else None
        return self._call("GET", _url(job, "/api/v1/jobs/"), (200,), params=params, timeout=30 + (wait_s or 0)).json()

    def cancel(self, job: Job | str) -> Job:
        return self._call("DELETE", _url(job, "/api/v1/jobs/"), (200,), timeout=30).json()

    def wait(self, job: Job | str, poll: Poll = Poll()) -> tuple[Job, int]:
        """The ended job, and how many GETs it took (0 when `job` has already ended). Each GET is a long
        poll; `poll` backs off only when the service answers early without an end (it holds as many
        waiters as it may, or is too old for `?wait=`)."""
        if isinstance(job, dict) and job.get("status") in ENDED:
            return job, 0
        deadline = time.monotonic() + self.timeout_s
        for polls, interval in enumerate(poll.intervals(), 1):
            asked = time.monotonic()
            found = self.job(job, wait_s=LONG_POLL_S)
            if found["status"] in ENDED:
                return found, polls
            if time.monotonic() > deadline:
                raise ServiceError(None, f"job {found['id']} still {found['status']} after {self.timeout_s:.0f}s; "
                                   "is a worker running?")
            if time.monotonic() - asked < 1.0:
                time.sleep(interval)
        raise AssertionError("unreachable")

    # ---- albums -----------------------------------------------------------------------------
    def submit_album(self, files: list[tuple[str, bytes]], callback_url: str | None = None) -> Album:
        data = {"callback_url": callback_url} if callback_url else {}
        return self._call("POST", "/api/v1/batches", (202,), files=[("image", f) for f in files], data=data,
                          timeout=300).json()

    def album(self, album: Album | str, wait_s: int | None = None) -> Album:
        params = {"wait": wait_s} if wait_s is not None else None
        return self._call("GET", _url(album, "/api/v1/batches/"), (200,), params=params,
                          timeout=30 + (wait_s or 0)).json()

    def wait_album(self, album: Album | str, poll: Poll = Poll(max_s=2.0),
                   progress: Callable[[Album], None] | None = None) -> Album:
        """Long polls, as `wait`; `progress` hears each answer."""
        if isinstance(album, dict) and album.get("summary", {}).get("done"):
            return album
        deadline = time.monotonic() + self.timeout_s
        for interval in poll.intervals():
            asked = time.monotonic()
            found = self.album(album, wait_s=LONG_POLL_S)
            if progress:
                progress(found)
            if found["summary"]["done"]:
                return found
            if time.monotonic() > deadline:
                raise ServiceError(None, f"album {found['id']} not done after {self.timeout_s:.0f}s; is a worker running?")
            if time.monotonic() - asked < 1.0:
                time.sleep(interval)
        raise AssertionError("unreachable")


def _url(thing: dict[str, Any] | str, prefix: str) -> str:
    if isinstance(thing, dict):
        return thing.get("url") or prefix + thing["id"]
    return thing if "://" in thing or thing.startswith("/") else prefix + thing


def image_files(folder: Path) -> list[Path]:
    """Photos under a folder, by suffix, in a stable order (hidden files skipped)."""
    return sorted_out(folder)[0]


def sorted_out(folder: Path) -> tuple[list[Path], list[Path]]:
    """A folder's files in a stable order: those of a format the service accepts, and the others
    (hidden files are neither: they are not the user's photos)."""
    photos: list[Path] = []
    others: list[Path] = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        (photos if path.suffix.lower() in IMAGE_SUFFIXES else others).append(path)
    return photos, others
