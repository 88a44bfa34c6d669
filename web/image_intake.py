"""The one image of a single submit, from wherever the caller put it: a multipart `image` file, an
`image_url` form field, or a JSON body `{"image_url": ...}` / `{"image_base64": "data:image/...;base64,..."}`.

Whatever the source, the bytes meet the same limits and checks as an upload (web/uploads.py's `checked`).
A URL is fetched by shared/outbound.py, the webhooks' fetcher: its address checked (private ones
refused unless DOGBREED_IMAGE_URL_ALLOW_PRIVATE), connected to as checked, each redirect checked
again, one deadline (DOGBREED_IMAGE_URL_TIMEOUT_S) and a streamed read capped at DOGBREED_MAX_UPLOAD_BYTES.
"""
from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import unquote, urlsplit

from flask import request
from werkzeug.utils import secure_filename

from shared import images, outbound
from shared.settings import Settings
from web.errors import ApiError
from web.uploads import FIELD, Upload, checked, read_upload, read_upload_bytes, too_large

JSON_FIELDS = ("image_url", "image_base64", "callback_url", "webhook_events")
ALLOW_PRIVATE_SETTING = "DOGBREED_IMAGE_URL_ALLOW_PRIVATE"
MAX_REDIRECTS = 3
# What a fetched body that is not an image is called: the caller's URL is what is wrong, not an upload.
NOT_AN_IMAGE = ("not_an_image", "unsupported_format", "empty_file")


def json_body() -> dict[str, Any] | None:
    """The JSON object of a JSON request (None for any other); only the fields we know are taken."""
    if not request.is_json:
        return None
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError("bad_request", 'The JSON body must be an object, e.g. {"image_url": "https://example.com/dog.jpg"}.', 400)
    unknown = sorted(set(body) - set(JSON_FIELDS))
    if unknown:
        raise ApiError("bad_request", f"Unknown field(s) {', '.join(unknown)}; a JSON submit takes {', '.join(JSON_FIELDS)}.", 400)
    return body


def field(name: str) -> str:
    """A text field of a submit, from its JSON body, its form or its query string ('' when absent)."""
    body = json_body()
    value = body.get(name) if body is not None else (request.form.get(name) or request.args.get(name))
    return value.strip() if isinstance(value, str) else ""


def _source(settings: Settings) -> tuple[str, Any]:
    """Where the one image is: ("url", URL), ("base64", value) or ("file", None); a bad mix is a 400."""
    body = json_body()
    if body is not None:
        url, inline = body.get("image_url"), body.get("image_base64")
        if url is not None and inline is not None:
            raise ApiError("too_many_files", "Send image_url or image_base64, not both: one image per job.", 400)
        if url is None and inline is None:
            raise ApiError("missing_image", 'The JSON body has no image: send {"image_url": "https://..."} or '
                                            '{"image_base64": "data:image/jpeg;base64,..."}.', 400)
        if url is not None:
            if not isinstance(url, str):
                raise ApiError("bad_image_url", "image_url must be a string, e.g. https://example.com/dog.jpg.", 400)
            return "url", url.strip()
        return "base64", inline
    url = (request.form.get("image_url") or "").strip()
    if url:
        if any(upload.filename for upload in request.files.getlist(FIELD)):
            raise ApiError("too_many_files", f"Send a file in '{FIELD}' or an image_url, not both: one image per job.", 400)
        return "url", url
    return "file", None


def read_image(settings: Settings) -> Upload:
    kind, value = _source(settings)
    if kind == "url":
        return fetch(value, settings)
    if kind == "base64":
        return checked(decode_base64(value, settings.max_upload_bytes), None, settings.max_pixels)
    return read_upload(settings.max_upload_bytes, settings.max_pixels)


def image_bytes(settings: Settings) -> bytes:
    """The same image's bytes, not decoded: enough to compare with an earlier job's (an Idempotency-Key
    replay), so a replay or a 409 costs no decode."""
    kind, value = _source(settings)
    if kind == "url":
        return _download(value, settings)[0]
    if kind == "base64":
        return decode_base64(value, settings.max_upload_bytes)
    return read_upload_bytes(settings.max_upload_bytes)


def decode_base64(value: object, max_bytes: int) -> bytes:
    """A data URI's (or bare base64's) bytes; what its MIME type says is ignored: the bytes are sniffed."""
    hint = "image_base64 is a data URI such as data:image/jpeg;base64,/9j/4AAQ... (or the base64 alone)."
    if not isinstance(value, str):
        raise ApiError("bad_image_base64", hint, 400)
    payload = value.strip()
    if payload.startswith("data:"):
        header, comma, payload = payload.partition(",")
        if not comma or not header.endswith(";base64"):
            raise ApiError("bad_image_base64", f"The data URI is not base64-encoded; {hint}", 400)
    payload = "".join(payload.split())
    if len(payload) > 4 * -(-max_bytes // 3):
        raise too_large(max_bytes)
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError("bad_image_base64", f"image_base64 is not valid base64; {hint}", 400) from None
    if len(data) > max_bytes:
        raise too_large(max_bytes)
    return data


def _failed(reason: str) -> ApiError:
    return ApiError("image_url_failed", f"The image_url could not be used: {reason}.", 422)


def _download(url: str, settings: Settings) -> tuple[bytes, str | None]:
    """The image_url's bytes and file name, or the reason it cannot be had (400/422)."""
    try:
        target = outbound.check(url, settings.image_url_allow_private, "image_url", ALLOW_PRIVATE_SETTING)
    except outbound.UrlRefused as exc:
        raise ApiError("bad_image_url", str(exc), 400) from None
    try:
        answer = outbound.send(target, "GET", headers={"User-Agent": "dogbreed-fetch/1", "Accept": "image/*"},
                               timeout_s=settings.image_url_timeout_s, max_bytes=settings.max_upload_bytes,
                               redirects=MAX_REDIRECTS, allow_private=settings.image_url_allow_private,
                               what="image_url", setting=ALLOW_PRIVATE_SETTING)
    except outbound.FetchFailed as exc:
        reason = {"timeout": "timed out", "unreachable": "unreachable", "redirects": "redirected badly"}.get(exc.kind, "bad answer")
        raise _failed(f"{reason} ({exc})") from None
    if answer.status != 200:
        raise _failed(f"its server answered HTTP {answer.status}, not 200")
    if not answer.complete:
        raise _failed(f"too large: over the {settings.max_upload_bytes // (1024 * 1024)} MiB limit")
    return answer.body, secure_filename(unquote(urlsplit(answer.url).path.rsplit("/", 1)[-1])) or None


def fetch(url: str, settings: Settings) -> Upload:
    body, name = _download(url, settings)
    try:
        return checked(body, name, settings.max_pixels)
    except images.ImageError as exc:
        if exc.code in NOT_AN_IMAGE:
            raise _failed(f"not an image ({exc.message})") from None
        raise
