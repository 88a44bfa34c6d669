"""Read the one uploaded file from a multipart request, or say exactly what is wrong with it."""
from __future__ import annotations

from dataclasses import dataclass

from flask import request
from werkzeug.utils import secure_filename

from shared import images
from web.errors import ApiError

FIELD = "image"


@dataclass
class Upload:
    data: bytes
    filename: str | None
    info: images.ImageInfo


def read_upload(max_bytes: int, max_pixels: int) -> Upload:
    if not (request.mimetype or "").startswith("multipart/form-data"):
        raise ApiError(415, "not_multipart", f"Send the image as multipart/form-data in the field '{FIELD}'.")
    files = request.files.getlist(FIELD)
    if not files:
        others = ", ".join(sorted(request.files.keys()))
        hint = f" (got the field{'s' if len(request.files) > 1 else ''} {others})" if others else ""
        raise ApiError(400, "missing_image", f"No file in the multipart field '{FIELD}'{hint}; send exactly one image there.")
    if len(files) > 1:
        raise ApiError(400, "too_many_files", f"Send exactly one image per job; got {len(files)} files in '{FIELD}'.")
    upload = files[0]
    data = upload.stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ApiError(413, "file_too_large", f"The upload is over the {max_bytes // (1024 * 1024)} MiB limit; send a smaller image.")
    info = images.inspect(data, max_pixels)
    filename = secure_filename(upload.filename or "") or None
    return Upload(data=data, filename=filename, info=info)
