"""`dogbreed data fetch`: download a dog data set with resume and a checksum, unpack it for `train`."""
from __future__ import annotations

import hashlib
import shutil
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import requests

CHUNK = 1 << 20


@dataclass(frozen=True)
class Source:
    url: str
    archive: str
    folder: str  # the data set's folder under --dest once unpacked
    sha256: str | None = None  # not published by the hosts: give --sha256 to pin a copy you trust


SOURCES = {
    "udacity": Source("https://s3-us-west-1.amazonaws.com/udacity-aind/dog-project/dogImages.zip",
                      "dogImages.zip", "dogImages"),
    "stanford": Source("http://vision.stanford.edu/aditya86/ImageNetDogs/images.tar",
                       "images.tar", "stanford-dogs"),
}


class FetchError(RuntimeError):
    """The download or the archive is not what it should be; the message says what to do."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, target: Path, sha256: str | None = None, timeout: float = 60) -> Path:
    """Fetch into target.part, resuming from its size with an HTTP Range; verify, then rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    try:
        _transfer(url, part, target.name, timeout)
    except requests.RequestException as exc:
        raise FetchError(f"downloading {url} failed ({type(exc).__name__}); run the same command again "
                         "to resume where it stopped") from None
    digest = sha256_of(part)
    if sha256 and digest != sha256.lower():
        part.unlink()
        raise FetchError(f"{target.name}: SHA-256 is {digest}, expected {sha256}; the broken copy was deleted, "
                         "run the command again (or check --sha256)")
    part.replace(target)
    target.with_name(target.name + ".sha256").write_text(f"{digest}  {target.name}\n")
    return target


def _transfer(url: str, part: Path, label: str, timeout: float) -> None:
    from tqdm import tqdm

    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    with requests.get(url, headers=headers, stream=True, timeout=timeout) as response:
        if response.status_code == 416:  # the part is already whole
            response.close()
        elif response.status_code not in (200, 206):
            raise FetchError(f"{url} answered HTTP {response.status_code}; check the URL or try again later")
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
                raise FetchError(f"{label}: got {part.stat().st_size} of {total} bytes; "
                                 "run the same command again to resume")


def _total(response: requests.Response, have: int) -> int | None:
    if response.status_code == 206 and "/" in response.headers.get("Content-Range", ""):
        size = response.headers["Content-Range"].rsplit("/", 1)[1]
        return int(size) if size.isdigit() else None
    length = response.headers.get("Content-Length")
    return int(length) + (have if response.status_code == 206 else 0) if length and length.isdigit() else None


def unpack(archive: Path, staging: Path) -> None:
    """Zip or tar, refusing members that would land outside `staging`."""
    staging.mkdir(parents=True, exist_ok=True)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                root = staging.resolve()
                for member in zf.namelist():
                    if not (root / member).resolve().is_relative_to(root):
                        raise FetchError(f"{archive.name}: member {member!r} points outside the folder; refused")
                zf.extractall(staging)
        else:
            with tarfile.open(archive) as tf:
                tf.extractall(staging, filter="data")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        raise FetchError(f"{archive.name} is damaged ({exc}); delete it and fetch again") from None


def data_root(folder: Path) -> Path:
    """The shallowest folder that holds train/ or class folders of images, skipping macOS debris."""
    queue = [folder]
    while queue:
        here = queue.pop(0)
        subdirs = sorted(p for p in here.iterdir() if p.is_dir() and not p.name.startswith(("__MACOSX", ".")))
        if (here / "train").is_dir() or sum(any(f.is_file() for f in d.iterdir()) for d in subdirs) >= 2:
            return here
        queue += subdirs
    raise FetchError(f"no class folders found in {folder}; the archive is not a folder-per-class data set")


def fetch(name: str, dest: Path, url: str | None = None, sha256: str | None = None) -> Path:
    """Download (or reuse) the archive, unpack it and move the data set to dest/<folder>."""
    source = SOURCES[name]
    dest = Path(dest)
    final = dest / source.folder
    if final.is_dir() and any(final.iterdir()):
        print(f"{final} is already there; delete it to unpack again")
        return final
    archive = dest / source.archive
    expected = sha256 or source.sha256
    if archive.is_file() and (expected is None or sha256_of(archive) == expected.lower()):
        print(f"using the archive already downloaded: {archive}")
    else:
        archive.unlink(missing_ok=True)
        download(url or source.url, archive, expected)
    print(f"sha256 {sha256_of(archive)}  {archive}")
    staging = dest / f".{source.folder}.unpacking"
    shutil.rmtree(staging, ignore_errors=True)
    unpack(archive, staging)
    data_root(staging).rename(final)
    shutil.rmtree(staging, ignore_errors=True)
    print(f"data set ready: {final}\nnext: dogbreed train {final} --backbone resnet50 --strategy feature-extraction")
    return final
