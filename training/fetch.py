"""`dogbreed data fetch`: download a dog data set with resume and a checksum, unpack it for `train`."""
from __future__ import annotations

import shutil
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from shared.files import DownloadError, download, sha256_file

__all__ = ["FetchError", "download", "fetch", "unpack"]


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


class FetchError(DownloadError):
    """The download or the archive is not what it should be; the message says what to do."""

    code = "fetch_failed"


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
    if archive.is_file() and (expected is None or sha256_file(archive) == expected.lower()):
        print(f"using the archive already downloaded: {archive}")
    else:
        archive.unlink(missing_ok=True)
        download(url or source.url, archive, expected)
    print(f"sha256 {sha256_file(archive)}  {archive}")
    staging = dest / f".{source.folder}.unpacking"
    shutil.rmtree(staging, ignore_errors=True)
    unpack(archive, staging)
    data_root(staging).rename(final)
    shutil.rmtree(staging, ignore_errors=True)
    print(f"data set ready: {final}\nnext: dogbreed train {final} --backbone efficientnet_lite2 --strategy feature-extraction")
    return final
