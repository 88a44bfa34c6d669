"""Uploaded images, stored once each under their SHA-256: in a local folder (FolderImageStore), or in an
S3 bucket (shared/s3.py) that web and workers on other hosts share. `open_image_store` picks one
from the settings; both answer the same methods, so callers never ask which.

Deleting is the delicate part: the same bytes can be uploaded again while gc (or a failed
submit) decides a file is unused. So `store` always touches (or rewrites) the file, and `discard`
deletes it only if nobody stored it since the caller's cutoff (locally: renamed aside, its time
looked at, and put back if it was touched; an upload either touched it before the rename, seen, or
found it gone and wrote it anew, kept).
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from shared.s3 import S3ImageStore
from shared.settings import Settings
from shared.stored import THUMBNAIL_EXTENSION, ImageStore, Stored, StoredImage


def open_image_store(settings: Settings) -> ImageStore:
    """The S3 store for DOGBREED_STORAGE_URL=s3://..., else the folder (DOGBREED_STORAGE_DIR or file://)."""
    if settings.uses_s3:
        return S3ImageStore.from_settings(settings)
    return FolderImageStore(settings.storage_dir)


class FolderImageStore:
    """The store in a local folder: one file per image, under two hex digits of its SHA-256."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_for(self, sha256: str, extension: str) -> Path:
        return self.root / sha256[:2] / f"{sha256}.{extension}"

    def store(self, data: bytes, extension: str) -> Stored:
        """Write atomically (temp file + rename) so a reader never sees half an image; touch an
        existing copy so gc sees it is in use again. Returns the file's modification time."""
        sha256 = hashlib.sha256(data).hexdigest()
        path = self.path_for(sha256, extension)
        try:
            os.utime(path)
            return Stored(sha256, path, path.stat().st_mtime_ns)
        except FileNotFoundError:
            pass
        self.put(sha256, extension, data)
        return Stored(sha256, path, path.stat().st_mtime_ns)

    def put(self, sha256: str, extension: str, data: bytes) -> None:
        """Bytes kept under an image's name (its thumbnail), written atomically like an image."""
        path = self.path_for(sha256, extension)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def read(self, sha256: str, extension: str) -> bytes:
        return self.path_for(sha256, extension).read_bytes()

    def delete(self, sha256: str, extension: str) -> None:
        self.path_for(sha256, extension).unlink(missing_ok=True)

    def discard(self, sha256: str, extension: str, untouched_since_ns: int) -> bool:
        """Delete the file only if nobody stored it after `untouched_since_ns`; True when deleted."""
        path = self.path_for(sha256, extension)
        aside = path.with_name(f".gc-{os.getpid()}-{path.name}")
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            return False
        if aside.stat().st_mtime_ns > untouched_since_ns:  # stored again meanwhile: in use
            try:
                os.link(aside, path)  # back, unless an upload already wrote it anew
            except FileExistsError:
                pass
            aside.unlink()
            return False
        aside.unlink()
        self.delete(sha256, THUMBNAIL_EXTENSION)  # a thumbnail lost to a racing upload is made again on demand
        return True

    def open(self, sha256: str, extension: str) -> StoredImage:
        """Raises FileNotFoundError when the image is not (or no longer) stored."""
        fh = self.path_for(sha256, extension).open("rb")
        stat = os.fstat(fh.fileno())
        return StoredImage(fh, stat.st_size, datetime.fromtimestamp(stat.st_mtime, timezone.utc))

    def exists(self, sha256: str, extension: str) -> bool:
        return self.path_for(sha256, extension).is_file()

    def stored_at(self, sha256: str, extension: str) -> datetime | None:
        """When the image was last written; None when it is not stored. gc spares recent ones."""
        try:
            return datetime.fromtimestamp(self.path_for(sha256, extension).stat().st_mtime, timezone.utc)
        except FileNotFoundError:
            return None

    def describe(self) -> str:
        return str(self.root)
