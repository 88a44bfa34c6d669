"""Files by content: one SHA-256 of a file, and a download with resume, progress and a pinned checksum.

Shared by training's data sets (`dogbreed data fetch`) and the models a worker fetches on first use.
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from shared.errors import FixedCodeError

if TYPE_CHECKING:
    import requests

CHUNK = 1 << 20


class DownloadError(FixedCodeError, RuntimeError):
    """The download or the archive is not what it should be; the message says what to do."""

    code = "download_failed"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, target: Path, sha256: str | None = None, timeout: float = 60) -> Path:
    """Fetch into target.part, resuming from its size with an HTTP Range; verify, then rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    import requests  # here, not at import: light commands that only hash files start faster

    part = target.with_name(target.name + ".part")
    try:
        _transfer(url, part, target.name, timeout)
    except requests.RequestException as exc:
        raise DownloadError(f"downloading {url} failed ({type(exc).__name__}); run the same command again "
                         "to resume where it stopped") from None
    digest = sha256_file(part)
    if sha256 and digest != sha256.lower():
        part.unlink()
        raise DownloadError(f"{target.name}: SHA-256 is {digest}, expected {sha256}; the broken copy was deleted, "
                         "run the command again (or check --sha256)")
    part.replace(target)
    target.with_name(target.name + ".sha256").write_text(f"{digest}  {target.name}\n")
    return target


def _transfer(url: str, part: Path, label: str, timeout: float) -> None:
    import requests
    from tqdm import tqdm

    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    with requests.get(url, headers=headers, stream=True, timeout=timeout) as response:
        if response.status_code == 416:  # the part is already whole
            response.close()
        elif response.status_code not in (200, 206):
            raise DownloadError(f"{url} answered HTTP {response.status_code}; check the URL or try again later")
        else:
            if response.status_code == 200 and have:
                have = 0  # the server ignored the Range: start again
            total = _total(response, have)
            with part.open("ab" if have else "wb") as fh, tqdm(
                total=total, initial=have, unit="B", unit_scale=True, desc=label, file=sys.stderr,
                disable=not sys.stderr.isatty(),
            ) as progress:
                for chunk in response.iter_content(CHUNK):
                    fh.write(chunk)
                    progress.update(len(chunk))
            if total is not None and part.stat().st_size != total:
                raise DownloadError(f"{label}: got {part.stat().st_size} of {total} bytes; "
                                 "run the same command again to resume")


def _total(response: "requests.Response", have: int) -> int | None:
    if response.status_code == 206 and "/" in response.headers.get("Content-Range", ""):
        size = response.headers["Content-Range"].rsplit("/", 1)[1]
        return int(size) if size.isdigit() else None
    length = response.headers.get("Content-Length")
    return int(length) + (have if response.status_code == 206 else 0) if length and length.isdigit() else None
