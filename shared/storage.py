"""Uploaded images, stored once each under their SHA-256 in a folder web and workers share."""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


class ImageStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_for(self, sha256: str, extension: str) -> Path:
        return self.root / sha256[:2] / f"{sha256}.{extension}"

    def put(self, data: bytes, extension: str) -> tuple[str, Path]:
        """Write atomically (temp file + rename) so a reader never sees half an image."""
        sha256 = hashlib.sha256(data).hexdigest()
        path = self.path_for(sha256, extension)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return sha256, path

    def read(self, sha256: str, extension: str) -> bytes:
        return self.path_for(sha256, extension).read_bytes()

    def delete(self, sha256: str, extension: str) -> None:
        self.path_for(sha256, extension).unlink(missing_ok=True)
