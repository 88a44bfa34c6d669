"""Read the one uploaded file from a multipart request, or say exactly what is wrong with it."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from flask import Flask, current_app, request
from werkzeug.datastructures import FileStorage
from werkzeug.utils import secure_filename

from shared import images, thumbnails
from web.errors import ApiError

FIELD = "image"
FORM_OVERHEAD = 64 * 1024  # room per file for the multipart headers and the other form fields


def body_limit(max_upload_bytes: int, files: int = 1) -> int:
    """The largest request body worth reading: anything above is refused (413) before it is read."""
    return (max_upload_bytes + FORM_OVERHEAD) * files
ALBUM_ENDPOINTS = ("api.create_album", "pages.upload")
JSON_ENDPOINT = "api.create_job"  # the one that also takes a JSON body (web/image_intake.py)


@dataclass
class Upload:
    data: bytes
    filename: str | None
    info: images.ImageInfo


def _files(what: str) -> list[FileStorage]:
    if not (request.mimetype or "").startswith("multipart/form-data"):
        raise ApiError("not_multipart", f"Send the image as multipart/form-data in the field '{FIELD}' (one job also "
                                        'takes a JSON body: {"image_url": "https://..."} or {"image_base64": "data:..."}).', 415)
    files = request.files.getlist(FIELD)
    if not files:
        others = ", ".join(sorted(request.files.keys()))
        hint = f" (got the field{'s' if len(request.files) > 1 else ''} {others})" if others else ""
        raise ApiError("missing_image", f"No file in the multipart field '{FIELD}'{hint}; send {what} there.", 400)
    return files


def _one_file() -> FileStorage:
    files = _files("exactly one image")
    if len(files) > 1:
        raise ApiError("too_many_files", f"Send exactly one image per job; got {len(files)} files in '{FIELD}' "
                                         "(an album goes to POST /api/v1/batches).", 400)
    return files[0]


def read_upload(max_bytes: int, max_pixels: int) -> Upload:
    return _read(_one_file(), max_bytes, max_pixels)


def read_upload_bytes(max_bytes: int) -> bytes:
    """The one file's bytes, not decoded (an Idempotency-Key replay compares them with the first job's)."""
    return _bytes(_one_file(), max_bytes)


def uploads_sha256(max_files: int, max_bytes: int) -> list[str | None]:
    """Every file of an album, not decoded nor held whole: its SHA-256, or None for one over the size limit."""
    found: list[str | None] = []
    for upload in _files(f"1 to {max_files} images")[:max_files]:
        digest, size = hashlib.sha256(), 0
        while chunk := upload.stream.read(1 << 20):
            size += len(chunk)
            digest.update(chunk)
        found.append(digest.hexdigest() if size <= max_bytes else None)
    return found


def file_count() -> int:
    """How many files an album request carries (its multipart body parsed, nothing decoded)."""
    return len(request.files.getlist(FIELD)) if (request.mimetype or "").startswith("multipart/form-data") else 0


def read_uploads(max_files: int, max_bytes: int, max_pixels: int) -> list[Upload | tuple[str | None, ApiError | images.ImageError]]:
    """Every file of an album, in order: an Upload, or its name with what is wrong with it."""
    files = _files(f"1 to {max_files} images")
    if len(files) > max_files:
        raise ApiError("too_many_files", f"An album takes at most {max_files} images; got {len(files)}. "
                                         "Send the rest in another request.", 400)
    found: list[Upload | tuple[str | None, ApiError | images.ImageError]] = []
    for upload in files:
        try:
            found.append(_read(upload, max_bytes, max_pixels))
        except (ApiError, images.ImageError) as exc:
            found.append((secure_filename(upload.filename or "") or None, exc))
    return found


def too_large(max_bytes: int) -> ApiError:
    return ApiError("file_too_large", f"The upload is over the {max_bytes // (1024 * 1024)} MiB limit; send a smaller image.", 413)


def checked(data: bytes, filename: str | None, max_pixels: int) -> Upload:
    """Bytes from any source (a file, a URL, base64) through the one set of image checks; the check's
    decode is kept reduced, for the thumbnail."""
    return Upload(data=data, filename=filename, info=images.inspect(data, max_pixels, reduced_to=thumbnails.MAX_SIDE))


def _bytes(upload: FileStorage, max_bytes: int) -> bytes:
    data = upload.stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise too_large(max_bytes)
    return data


def _read(upload: FileStorage, max_bytes: int, max_pixels: int) -> Upload:
    return checked(_bytes(upload, max_bytes), secure_filename(upload.filename or "") or None, max_pixels)


def _body_limit() -> None:
    """An album may be as large as its files together; a JSON submit as its image in base64;
    everything else keeps the one-file limit."""
    settings = current_app.config["SETTINGS"]
    if request.endpoint in ALBUM_ENDPOINTS:
        request.max_content_length = body_limit(settings.max_upload_bytes, settings.max_files_per_request)
    elif request.endpoint == JSON_ENDPOINT and request.is_json:
        request.max_content_length = 4 * -(-settings.max_upload_bytes // 3) + FORM_OVERHEAD


def init_app(app: Flask) -> None:
    """Before auth's CSRF check, which is the first to read the form."""
    app.before_request(_body_limit)
