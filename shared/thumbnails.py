"""Thumbnails: a small JPEG kept beside each stored image, so the history and album pages load a few
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
MIME_TYPE = "image/jpeg"
# JPEG, not WebP: at 256 px about the same bytes (8.9 vs 7.5 KB on the team's photos) for a 15th of
# the encoding time (2 ms vs 29 ms at WebP's default effort; bench/thumbnails.py).
QUALITY = 80


def encode(rgb: Image.Image) -> bytes:
    """Upright RGB of at least MAX_SIDE (or the whole image, when smaller) as the JPEG thumbnail."""
    img = rgb.copy()
    img.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=QUALITY, optimize=True)
    return out.getvalue()


def make(data: bytes, max_pixels: int) -> bytes:
    """The thumbnail of stored bytes, decoded anew through shared/images (its limits and slots; a JPEG
    at reduced size): for images stored before thumbnails existed. An upload's comes from its check's
    own decode instead (`images.inspect(..., reduced_to=MAX_SIDE)`)."""
    return encode(Image.fromarray(images.load_rgb(data, max_pixels, max_side=MAX_SIDE)))


def ensure(store: ImageStore, sha256: str, data: bytes, max_pixels: int, reduced: Image.Image | None = None) -> bytes | None:
    """Make (from `reduced`, the check's pixels, when given) and keep the thumbnail of these stored
    bytes; None (logged) when it cannot be made: the pages then make it on demand or show the original."""
    try:
        thumbnail = encode(reduced) if reduced is not None else make(data, max_pixels)
        store.put(sha256, THUMBNAIL_EXTENSION, thumbnail)
    except Exception as exc:  # never the reason an upload fails: the image itself was accepted
        log.warning("no thumbnail for image %s: %s", sha256[:12], exc)
        return None
    return thumbnail
