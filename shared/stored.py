"""What an image store hands back, and the protocol every store answers (folder or S3).

Its own module so that shared/storage.py and shared/s3.py both build on it without importing each other.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, NamedTuple, Protocol

# Each image's thumbnail lives beside it under the image's SHA-256 with this extension (shared/thumbnails.py
# makes it); a store's `discard` removes it with its image.
THUMBNAIL_EXTENSION = "thumb.jpg"


class Stored(NamedTuple):
    sha256: str
    location: object  # the file's path, or the object's key
    mtime_ns: int


@dataclass
class StoredImage:
    """An open stored image: its bytes as a stream, their count and when they were last stored."""

    stream: BinaryIO
    size: int
    modified: datetime


class ImageStore(Protocol):
    """What web, worker and gc use of an image store, local or S3."""

    def store(self, data: bytes, extension: str) -> Stored: ...
    def put(self, sha256: str, extension: str, data: bytes) -> None: ...
    def read(self, sha256: str, extension: str) -> bytes: ...
    def open(self, sha256: str, extension: str) -> StoredImage: ...
    def exists(self, sha256: str, extension: str) -> bool: ...
    def stored_at(self, sha256: str, extension: str) -> datetime | None: ...
    def delete(self, sha256: str, extension: str) -> None: ...
    def discard(self, sha256: str, extension: str, untouched_since_ns: int) -> bool: ...
    def describe(self) -> str: ...
