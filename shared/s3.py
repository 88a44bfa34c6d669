"""Images and published models in an S3 bucket (AWS, MinIO, Ceph RGW, Garage: DOGBREED_S3_ENDPOINT_URL),
so a worker on another host reads the photo it classifies and the model an operator activated.

Layout under s3://bucket/prefix/: `images/ab/<sha256>.<ext>` (content-addressed, as on disk) and
`models/<version>/<file>` plus `models/<version>/manifest.json` with each file's sha256. An S3 PUT is
atomic, so no reader sees half an image; the manifest is written last, so a version without one is
not published. Credentials come from the standard AWS variables (AWS_ACCESS_KEY_ID, ...).
"""
from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from shared.errors import FixedCodeError
from shared.files import sha256_file
from shared.settings import Settings
from shared.stored import THUMBNAIL_EXTENSION, Stored, StoredImage

MANIFEST = "manifest.json"


class ModelDownloadError(FixedCodeError, RuntimeError):
    """A published version that cannot be fetched whole and intact; the message says which file."""

    code = "model_download_failed"


def split_url(url: str) -> tuple[str, str]:
    """s3://bucket/some/prefix -> ("bucket", "some/prefix/"); the prefix ends with "/" or is empty."""
    bucket, _, prefix = url[len("s3://"):].partition("/")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


def make_client(endpoint_url: str | None):
    """A boto3 client; boto3 reads credentials and region from the usual AWS variables and files."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=60,
                    s3={"addressing_style": "path"} if endpoint_url else {})
    return boto3.client("s3", endpoint_url=endpoint_url, config=config,
                        region_name=None if endpoint_url is None else "us-east-1")


def _missing(exc: Exception) -> bool:
    code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")


class _InBucket:
    """A part of the bucket DOGBREED_STORAGE_URL names (its prefix), reached through one client."""

    def __init__(self, client, bucket: str, prefix: str = "") -> None:
        self.client, self.bucket, self.prefix = client, bucket, prefix

    @classmethod
    def from_settings(cls, settings: Settings):
        bucket, prefix = split_url(settings.storage_url or "")
        return cls(make_client(settings.s3_endpoint_url), bucket, prefix)


class S3ImageStore(_InBucket):

    def key_for(self, sha256: str, extension: str) -> str:
        return f"{self.prefix}images/{sha256[:2]}/{sha256}.{extension}"

    def store(self, data: bytes, extension: str) -> Stored:
        """Always PUT (same key, same bytes): that refreshes LastModified, which is what tells gc the
        image was just stored again and must be spared; returns when the object now counts as stored
        (its LastModified, to the second)."""
        sha256 = hashlib.sha256(data).hexdigest()
        key = self.key_for(sha256, extension)
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)
        stored = self.stored_at(sha256, extension)
        return Stored(sha256, key, int(stored.timestamp() * 1e9) if stored else time.time_ns())

    def discard(self, sha256: str, extension: str, untouched_since_ns: int) -> bool:
        """Delete the object only if nobody stored it after `untouched_since_ns`; True when deleted.
        LastModified has one-second steps, so an upload of the same bytes in that second keeps it."""
        stored = self.stored_at(sha256, extension)
        if stored is None or stored.timestamp() * 1e9 >= untouched_since_ns - 1e9:
            return False
        self.delete(sha256, extension)
        self.delete(sha256, THUMBNAIL_EXTENSION)
        return True

    def put(self, sha256: str, extension: str, data: bytes) -> None:
        """Bytes kept under an image's name (its thumbnail)."""
        self.client.put_object(Bucket=self.bucket, Key=self.key_for(sha256, extension), Body=data)

    def read(self, sha256: str, extension: str) -> bytes:
        with self.open(sha256, extension).stream as body:
            return body.read()

    def open(self, sha256: str, extension: str) -> StoredImage:
        from botocore.exceptions import ClientError

        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self.key_for(sha256, extension))
        except ClientError as exc:
            if _missing(exc):
                raise FileNotFoundError(f"s3://{self.bucket}/{self.key_for(sha256, extension)}") from None
            raise
        return StoredImage(obj["Body"], int(obj["ContentLength"]), obj["LastModified"])

    def stored_at(self, sha256: str, extension: str) -> datetime | None:
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.key_for(sha256, extension))
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        return head["LastModified"]

    def exists(self, sha256: str, extension: str) -> bool:
        return self.stored_at(sha256, extension) is not None

    def delete(self, sha256: str, extension: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.key_for(sha256, extension))

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}images/"


class S3ModelStore(_InBucket):
    """Published model versions in the bucket: `dogbreed models publish` uploads, workers download once."""

    def _key(self, name: str, file: str) -> str:
        return f"{self.prefix}models/{name}/{file}"

    def where(self, name: str) -> str:
        return f"s3://{self.bucket}/{self._key(name, '')}"

    def upload(self, folder: Path, name: str) -> str:
        """Every file first, the manifest (name -> sha256) last: a version is there once its manifest is."""
        files = {p.name: sha256_file(p) for p in sorted(Path(folder).iterdir()) if p.is_file()}
        for file in files:
            self.client.upload_file(str(Path(folder) / file), self.bucket, self._key(name, file))
        manifest = json.dumps({"name": name, "files": files}, indent=2).encode()
        self.client.put_object(Bucket=self.bucket, Key=self._key(name, MANIFEST), Body=manifest)
        return self.where(name)

    def manifest(self, name: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(name, MANIFEST))["Body"]
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        return json.loads(body.read())

    def has(self, name: str) -> bool:
        return self.manifest(name) is not None

    def fetch(self, name: str, model_dir: Path) -> Path:
        """model_dir/name, downloaded once: into a temp folder beside it, each sha256 checked, then
        renamed into place, so a folder that exists is whole. Later calls find it and download nothing."""
        target = Path(model_dir) / name
        if target.is_dir():
            return target
        manifest = self.manifest(name)
        if manifest is None:
            raise ModelDownloadError(f"{self.where(name)} has no {MANIFEST}: was it published with this "
                                     "DOGBREED_STORAGE_URL?")
        Path(model_dir).mkdir(parents=True, exist_ok=True)
        temp = Path(tempfile.mkdtemp(dir=model_dir, prefix=f".fetch-{name}-"))
        try:
            for file, expected in manifest["files"].items():
                if Path(file).name != file:
                    raise ModelDownloadError(f"{self.where(name)}{MANIFEST} names an unsafe file {file!r}")
                self.client.download_file(self.bucket, self._key(name, file), str(temp / file))
                actual = sha256_file(temp / file)
                if actual != expected:
                    raise ModelDownloadError(f"{self.where(name)}{file}: sha256 {actual} but the manifest says "
                                             f"{expected}; the upload is damaged, publish it again")
            (temp / MANIFEST).write_text(json.dumps(manifest, indent=2))
            try:
                temp.rename(target)
            except OSError:
                if not target.is_dir():  # another process of this host won the race: theirs is as good
                    raise
        finally:
            shutil.rmtree(temp, ignore_errors=True)
        return target


def open_model_store(settings: Settings) -> S3ModelStore | None:
    """The bucket's model store when images live in S3; None: models stay in DOGBREED_MODEL_DIR only."""
    return S3ModelStore.from_settings(settings) if settings.uses_s3 else None
