"""Decode untrusted image bytes with Pillow: sniff the real format, refuse bombs, normalise to RGB.

Web calls `inspect` to accept or refuse an upload; the worker calls `load_rgb` on the stored bytes.
Both use the same rules, so whatever the API accepted, the worker can read.

Bombs, cheap to send and expensive to decode, are stopped before any pixel is decoded: a pixel
limit, a limit on progressive-JPEG scans (each scan is one more pass over every pixel), and a
per-process bound on how many large images decode at once (each can take hundreds of MiB).
Only the decoders of the accepted formats ever run (`formats=` on every open).
"""
from __future__ import annotations

import functools
import io
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, cast

import numpy as np
from PIL import Image, UnidentifiedImageError

from shared.errors import DogbreedError
from shared.formats import ALLOWED_FORMATS, MIME_TYPES

# Formats a browser shows as an image and that cannot carry script. SVG is never accepted.
# A JPEG that carries a second image (MPF: phone HDR/portrait shots, 3D cameras) is a JPEG whose
# first image is the photo; Pillow names it MPO. Browsers show the first image.
SAME_AS = {"MPO": "JPEG"}
MIN_SIDE = 8
# Real progressive JPEGs have about 10 scans (mozjpeg up to ~20); a scan bomb repeats one thousands of times.
MAX_JPEG_SCANS = 100
# Above this many decoded pixels an image counts as large: it waits for a decode slot (see `decode_slot`).
LARGE_DECODE_PIXELS = 4_000_000
DEFAULT_MAX_CONCURRENT_DECODES = 2

# Formats we refuse by name, recognised by their first bytes without running their parsers.
_KNOWN_OTHERS = (
    (b"\x00\x00\x01\x00", "ICO"), (b"\x00\x00\x02\x00", "CUR"), (b"8BPS", "PSD"),
    (b"P1", "PPM"), (b"P2", "PPM"), (b"P3", "PPM"), (b"P4", "PPM"), (b"P5", "PPM"), (b"P6", "PPM"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"), (b"\xff\x4f\xff\x51", "JPEG 2000"), (b"qoif", "QOI"),
    (b"\x76\x2f\x31\x01", "OpenEXR"), (b"#?RADIANCE", "HDR"), (b"DDS ", "DDS"),
)
_ISO_DECODED = ("HEIC", "HEIF", "AVIF")  # since pillow-heif (and Pillow's AVIF): accepted, see ALLOWED_FORMATS
_ISO_BRANDS = {b"heic": "HEIC", b"heix": "HEIC", b"mif1": "HEIF", b"msf1": "HEIF", b"avif": "AVIF", b"avis": "AVIF"}
# Inside a JPEG's entropy-coded data 0xFF is followed by 0x00 (stuffing) or a restart marker; anything else is a marker.
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7]")


class ImageError(DogbreedError, ValueError):
    """An image we refuse; `code` is stable for clients, `message` says what to do."""

    code: str
    status: int = 400


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width: int
    height: int
    animated: bool
    # With inspect's `reduced_to`: the checked frame as upright RGB of at least that size (a thumbnail's
    # source, so making one costs no second decode).
    reduced: Image.Image | None = field(default=None, compare=False, repr=False)

    @property
    def extension(self) -> str:
        return ALLOWED_FORMATS[self.format]

    @property
    def mime_type(self) -> str:
        return MIME_TYPES[self.format]


# ---- bounded concurrent large decodes ---------------------------------------------------------
_slots = threading.BoundedSemaphore(DEFAULT_MAX_CONCURRENT_DECODES)


def set_max_concurrent_decodes(n: int) -> None:
    """Called once at an entry point (DOGBREED_MAX_CONCURRENT_DECODES), before any decode runs."""
    global _slots
    _slots = threading.BoundedSemaphore(max(1, n))


@contextmanager
def decode_slot(pixels: int) -> Iterator[None]:
    """Large decodes take turns, so N threads cannot each hold a 50 MP image at once; small ones never wait."""
    if pixels <= LARGE_DECODE_PIXELS:
        yield
        return
    slots = _slots
    with slots:
        yield


# ---- header checks ---------------------------------------------------------------------------
def jpeg_scans(data: bytes, stop_after: int) -> int:
    """Start-of-scan markers in the first image of a JPEG (an MPO's second image is never decoded).

    Walks the marker segments and skips entropy-coded data with one regex per scan, so it costs a
    few microseconds per scan; stops counting past `stop_after`.
    """
    i, n, scans = 2, len(data), 0
    while i + 4 <= n:
        if data[i] != 0xFF:
            break  # damaged: the decoder will say so
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0xD9:  # end of image
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # restart markers and TEM carry no length
            i += 2
            continue
        i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
        if marker == 0xDA:
            scans += 1
            if scans > stop_after:
                break
            found = _NEXT_MARKER.search(data, i)
            if found is None:
                break
            i = found.start()
    return scans


def _other_format(data: bytes) -> str | None:
    for magic, name in _KNOWN_OTHERS:
        if data.startswith(magic):
            return name
    if data[4:8] == b"ftyp":
        return _ISO_BRANDS.get(data[8:12])
    return None


def _format(img: Image.Image) -> str:
    fmt = img.format or ""  # None (an image not read from a file) is no format we accept
    return SAME_AS.get(fmt, fmt)


@functools.cache
def _register_decoders() -> None:
    """HEIF through pillow-heif (once per process, on first use: the light tools never load it). Only
    the primary image is decoded: never the thumbnails, depth maps or auxiliary images a photo carries.
    libheif's own security limits stay on, before our pixel limit and decode slots."""
    import pillow_heif

    pillow_heif.options.THUMBNAILS = False
    pillow_heif.options.DEPTH_IMAGES = False
    pillow_heif.options.AUX_IMAGES = False
    pillow_heif.register_heif_opener()


def _open(data: bytes, max_pixels: int) -> Image.Image:
    _register_decoders()
    if not data:
        raise ImageError("empty_file", "The uploaded file is empty; choose a JPEG, PNG, GIF, WebP, BMP or TIFF photo.")
    try:
        img = Image.open(io.BytesIO(data), formats=list(ALLOWED_FORMATS))
    except Image.DecompressionBombError:
        raise ImageError("image_too_large", "The image claims far more pixels than we accept; scale it down.", 413) from None
    except UnidentifiedImageError:
        other = _other_format(data)
        if other in _ISO_DECODED:  # a brand we decode, whose boxes the decoder could not read
            raise ImageError("corrupt_image", f"The {other} image's header is damaged or truncated; upload the whole file again.") from None
        if other:
            raise ImageError(
                "unsupported_format",
                f"{other} images are not accepted; send JPEG, PNG, GIF, WebP, BMP or TIFF "
                "(most viewers can export one).",
                415,
            ) from None
        raise ImageError(
            "not_an_image",
            "The file is not an image we can read (the bytes are not JPEG, PNG, GIF, WebP, BMP or TIFF, "
            "whatever its name says).",
            415,
        ) from None
    except Exception as exc:  # Pillow raises many types on hostile headers
        raise ImageError("corrupt_image", f"The image header is damaged ({type(exc).__name__}).") from None
    fmt = _format(img)
    if fmt not in ALLOWED_FORMATS:  # a plugin reporting a format we never asked for
        raise ImageError(
            "unsupported_format",
            f"{img.format} images are not accepted; send JPEG, PNG, GIF, WebP, BMP or TIFF.",
            415,
        )
    width, height = img.size
    if width < MIN_SIDE or height < MIN_SIDE:
        raise ImageError("image_too_small", f"The image is {width}x{height}; send one at least {MIN_SIDE}x{MIN_SIDE} pixels.")
    if width * height > max_pixels:
        raise ImageError(
            "image_too_large",
            f"The image is {width}x{height} = {width * height:,} pixels, over the limit of {max_pixels:,}; "
            "scale it down and upload again.",
            413,
        )
    if fmt == "JPEG":
        scans = jpeg_scans(data, MAX_JPEG_SCANS)
        if scans > MAX_JPEG_SCANS:
            raise ImageError(
                "too_many_scans",
                f"The JPEG has more than {MAX_JPEG_SCANS} progressive scans (photos have about 10); "
                "re-save it as an ordinary JPEG.",
            )
    return img


def _prepare_first_frame(img: Image.Image, draft: tuple[int, int] | None) -> int:
    """Point at frame 0 and ask a JPEG for reduced size when `draft` allows; returns the pixels to decode."""
    img.seek(0)
    if draft and _format(img) == "JPEG":
        # DCT-domain downscale: far less work and memory; never below the size asked for.
        img.draft("RGB", draft)
    width, height = img.size
    return width * height


_ORIENT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
           5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
           8: Image.Transpose.ROTATE_90}
STRIP_PIXELS = 1 << 20
DEEP_MODES = ("I;16", "I;16B", "I;16L", "I")


def _flatten(img: Image.Image, deep_scale: int) -> Image.Image:
    """8-bit RGB (from L, LA, P, RGBA, CMYK, I;16, ...); transparency becomes white."""
    if img.mode in DEEP_MODES:
        arr = np.asarray(img, dtype=np.uint32)
        img = Image.fromarray((arr // deep_scale).clip(0, 255).astype(np.uint8), "L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB")


def _rgb(img: Image.Image, max_side: int | None) -> Image.Image:
    """The decoded frame as RGB, box-reduced to at least `max_side` when given.

    Converted and reduced in strips of rows, so a 50 MP RGBA PNG never gets a second full-size copy
    (flattening onto white is per pixel and reducing is an average, so strips give the same result).
    """
    deep_scale = 1
    if img.mode in DEEP_MODES:
        deep_scale = 257 if cast("tuple[int, int]", img.getextrema())[1] > 255 else 1  # one band: (min, max)
    width, height = img.size
    factor = max(1, max(width, height) // max_side) if max_side else 1
    if factor < 2:
        return _flatten(img, deep_scale)
    out = Image.new("RGB", (-(-width // factor), -(-height // factor)))
    rows = max(1, STRIP_PIXELS // (width * factor)) * factor
    for top in range(0, height, rows):
        strip = img.crop((0, top, width, min(height, top + rows)))
        out.paste(_flatten(strip, deep_scale).reduce(factor), (0, top // factor))
    return out


def _orientation(img: Image.Image) -> int | None:
    try:
        return img.getexif().get(0x0112)
    except Exception:  # damaged EXIF is ignored, as viewers do
        return None


def inspect(data: bytes, max_pixels: int, reduced_to: int | None = None) -> ImageInfo:
    """Accept or refuse an upload: decodes the whole first frame (a JPEG at 1/8 scale, or larger when
    `reduced_to` asks for more, which still reads every byte), so truncated files are caught here
    without holding the full-size pixels."""
    img = _open(data, max_pixels)
    fmt = _format(img)
    width, height = img.size
    draft = (width // 8, height // 8)
    if reduced_to:
        side = max(width, height)
        draft = (max(draft[0], -(-width * reduced_to // side)), max(draft[1], -(-height * reduced_to // side)))
    reduced = None
    try:
        animated = bool(getattr(img, "is_animated", False))  # looks at frame 1 only: never walks all pages
        with decode_slot(_prepare_first_frame(img, draft)):
            img.load()
            orientation = _orientation(img)  # after load: a PNG may keep its EXIF after the pixels
            if reduced_to:
                reduced = _rgb(img, reduced_to)
                if orientation in _ORIENT:
                    reduced = reduced.transpose(_ORIENT[orientation])
            img.close()  # the pixels go now, inside the slot, not whenever the caller drops them
    except ImageError:
        raise
    except Exception as exc:
        raise ImageError(
            "corrupt_image",
            f"The image could not be decoded ({type(exc).__name__}: {exc}); it may be truncated. Upload the whole file again.",
        ) from None
    if orientation in (5, 6, 7, 8):  # upright, as a person sees it
        width, height = height, width
    return ImageInfo(format=fmt, width=width, height=height, animated=animated, reduced=reduced)


def load_rgb(data: bytes, max_pixels: int, max_side: int | None = None) -> np.ndarray:
    """HxWx3 uint8 RGB of the first frame, upright. With `max_side`, a big image is decoded (JPEG)
    or reduced (other formats) to at least that size, never below it."""
    img = _open(data, max_pixels)
    try:
        with decode_slot(_prepare_first_frame(img, (max_side, max_side) if max_side else None)):
            img.load()
            orientation = _orientation(img)
            rgb = _rgb(img, max_side)
            img.close()  # only the RGB copy (reduced when asked) leaves the slot
        if orientation in _ORIENT:
            rgb = rgb.transpose(_ORIENT[orientation])
        return np.asarray(rgb)
    except ImageError:
        raise
    except Exception as exc:
        raise ImageError("corrupt_image", f"The image could not be decoded ({type(exc).__name__}: {exc}).") from None
