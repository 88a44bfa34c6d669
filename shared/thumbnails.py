"""Thumbnails: a small WebP kept beside each stored image, so the history and album pages load a few
KB per photo instead of every original (up to DOGBREED_MAX_UPLOAD_BYTES each, and HEIC, which
browsers cannot show at all).

Made by web when it stores an upload; an image stored before thumbnails existed (or whose thumbnail
was lost) gets one on its first request (web/pages.py). gc removes it with its image (the stores' `discard`).
"""
from __future__ import annotations

import io
import logging

from PIL import Image

from shared import images
from shared.stored import THUMBNAIL_EXTENSION, ImageStore

log = logging.getLogger(__name__)
MAX_SIDE = 256
MIME_TYPE = "image/webp"
QUALITY = 80  # a 256 px photo: about 10 KB


def make(data: bytes, max_pixels: int) -> bytes:
    """The image, upright, at most MAX_SIDE on its longest side, as WebP. Decoded through shared/images
    (its limits and slots; a JPEG at reduced size), so it costs little next to the upload's own check."""
    img = Image.fromarray(images.load_rgb(data, max_pixels, max_side=MAX_SIDE))
    img.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    img.save(out, "WEBP", quality=QUALITY)
    return out.getvalue()


def ensure(store: ImageStore, sha256: str, data: bytes, max_pixels: int) -> bytes | None:
    """Make and keep the thumbnail of these stored bytes; None (logged) when it cannot be made, and the
    pages fall back to making it on demand or to the original."""
    try:
        thumbnail = make(data, max_pixels)
        store.put(sha256, THUMBNAIL_EXTENSION, thumbnail)
    except Exception as exc:  # never the reason an upload fails: the image itself was accepted
        log.warning("no thumbnail for image %s: %s", sha256[:12], exc)
        return None
    return thumbnail
