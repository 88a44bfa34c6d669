"""Decode untrusted image bytes with Pillow: sniff the real format, refuse bombs, normalise to RGB.

Web calls `inspect` to accept or refuse an upload; the worker calls `load_rgb` on the stored bytes.
Both use the same rules, so whatever the API accepted, the worker can read.

Bombs, cheap to send and expensive to decode, are stopped before any pixel is decoded: a walk of
the file's structure before Pillow parses it (shared/structure.py), a pixel limit, a limit on
progressive-JPEG scans (each scan is one more pass over every pixel), a per-process memory budget
that each decode reserves its estimated peak from, and a bound on how many large images decode at once.
Only the decoders of the accepted formats ever run (`formats=` on every open).
"""
from __future__ import annotations

import functools
import io
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, cast

import numpy as np
from PIL import Image, UnidentifiedImageError

from shared import structure
from shared.errors import DogbreedError
from shared.formats import ALLOWED_FORMATS, MIME_TYPES

# Formats a browser shows as an image and that cannot carry script. SVG is never accepted.
# A JPEG that carries a second image (MPF: phone HDR/portrait shots, 3D cameras) is a JPEG whose
# first image is the photo; Pillow names it MPO. Browsers show the first image.
SAME_AS = {"MPO": "JPEG"}
MIN_SIDE = 8
# Above this many decoded pixels an image counts as large: it waits for a decode slot (see `decode_slot`).
LARGE_DECODE_PIXELS = 4_000_000
DEFAULT_MAX_CONCURRENT_DECODES = 2
DEFAULT_DECODE_MEMORY_MB = 1024
# A decode's peak, per pixel of the full-size first frame (before any draft), in units of the bytes
# Pillow keeps per pixel of its mode. Measured with ru_maxrss on 16 MP files (README, "Decode limits"):
# a progressive JPEG holds every DCT coefficient (2 bytes per component) besides its pixels, and
# WebP fills an RGBA canvas several times. A format not listed gets WebP's, the largest.
PEAK_FACTOR = {"JPEG": 1.0, "JPEG progressive": 2.25, "PNG": 1.5, "GIF": 2.0, "TIFF": 1.5, "BMP": 1.5, "WEBP": 4.25}
UNKNOWN_PEAK_FACTOR = 4.25

# Formats we refuse by name, recognised by their first bytes without running their parsers.
_KNOWN_OTHERS = (
    (b"\x00\x00\x01\x00", "ICO"), (b"\x00\x00\x02\x00", "CUR"), (b"8BPS", "PSD"),
    (b"P1", "PPM"), (b"P2", "PPM"), (b"P3", "PPM"), (b"P4", "PPM"), (b"P5", "PPM"), (b"P6", "PPM"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"), (b"\xff\x4f\xff\x51", "JPEG 2000"), (b"qoif", "QOI"),
    (b"\x76\x2f\x31\x01", "OpenEXR"), (b"#?RADIANCE", "HDR"), (b"DDS ", "DDS"),
)
_ISO_DECODED = ("HEIC", "HEIF", "AVIF")  # since pillow-heif (and Pillow's AVIF): accepted, see ALLOWED_FORMATS
_ISO_BRANDS = {b"heic": "HEIC", b"heix": "HEIC", b"mif1": "HEIF", b"msf1": "HEIF", b"avif": "AVIF", b"avis": "AVIF"}


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


# ---- bounded concurrent decodes --------------------------------------------------------------
class DecodeBudget:
    """The bytes this process's decodes may hold at once: each reserves its estimated peak, and
    waits until it fits beside the others; one that could never fit is refused (`reserve`)."""

    def __init__(self, limit_bytes: int) -> None:
        self.limit = limit_bytes
        self.in_use = 0
        self.peak = 0  # the most ever reserved at once, for tests and the note
        self._changed = threading.Condition()

    @contextmanager
    def reserve(self, nbytes: int) -> Iterator[None]:
        if nbytes > self.limit:
            raise ImageError(
                "image_too_large",
                f"Decoding this image would take about {nbytes >> 20:,} MiB, more than this server decodes at once "
                f"({self.limit >> 20:,} MiB, DOGBREED_DECODE_MEMORY_MB); scale it down or save it as a baseline JPEG.",
                413,
            )
        with self._changed:
            self._changed.wait_for(lambda: self.in_use + nbytes <= self.limit)
            self.in_use += nbytes
            self.peak = max(self.peak, self.in_use)
        try:
            yield
        finally:
            with self._changed:
                self.in_use -= nbytes
                self._changed.notify_all()


_slots = threading.BoundedSemaphore(DEFAULT_MAX_CONCURRENT_DECODES)
budget = DecodeBudget(DEFAULT_DECODE_MEMORY_MB << 20)


def set_max_concurrent_decodes(n: int) -> None:
    """Called once at an entry point (DOGBREED_MAX_CONCURRENT_DECODES), before any decode runs."""
    global _slots
    _slots = threading.BoundedSemaphore(max(1, n))


def set_decode_memory_mb(mb: int) -> None:
    """Called once at an entry point (DOGBREED_DECODE_MEMORY_MB), before any decode runs."""
    global budget
    budget = DecodeBudget(max(1, mb) << 20)


def _pixel_bytes(mode: str) -> int:
    """What Pillow keeps per pixel: one byte for L/P, two for 16-bit, else four (RGB is stored as RGBX)."""
    if mode in ("1", "L", "P"):
        return 1
    return 2 if mode.startswith("I;16") else 4


def peak_estimate(img: Image.Image) -> int:
    """Bytes a decode of the opened image's first frame may reach at its peak, before any draft."""
    fmt = _format(img)
    if fmt == "JPEG" and img.info.get("progressive"):
        fmt = "JPEG progressive"
    width, height = img.size
    return int(width * height * _pixel_bytes(img.mode) * PEAK_FACTOR.get(fmt, UNKNOWN_PEAK_FACTOR))


@contextmanager
def decode_slot(estimate: int, pixels: int) -> Iterator[None]:
    """Every decode reserves its estimated peak from the budget; large ones also take turns, so N threads
    cannot each hold a 50 MP image at once."""
    with budget.reserve(estimate):
        if pixels <= LARGE_DECODE_PIXELS:
            yield
            return
        with _slots:
            yield


# ---- header checks ---------------------------------------------------------------------------
def _tga(data: bytes) -> bool:
    """TGA has no magic: its v2 footer, or a header whose image type, colour map and depth agree.
    An uncompressed true-colour TGA starts 00 00 02 00 like a CUR, which has at least one image."""
    if data.endswith(b"TRUEVISION-XFILE.\x00"):
        return True
    return (len(data) >= 18 and data[1] in (0, 1) and data[2] in (1, 2, 3, 9, 10, 11)
            and data[16] in (8, 15, 16, 24, 32) and (data[1] == 1 or data[3:8] == b"\0" * 5))


def _other_format(data: bytes) -> str | None:
    icon = data[:4] in (b"\x00\x00\x01\x00", b"\x00\x00\x02\x00")
    if (not icon or data[4:6] == b"\0\0") and _tga(data):
        return "TGA"
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


def _walk(data: bytes) -> None:
    """Structure before pixels: Pillow's own parsing of a hostile file is what costs seconds."""
    try:
        structure.measure(data)
    except structure.TooComplex as exc:
        if exc.measure == "scans":
            raise ImageError(
                "too_many_scans",
                f"The JPEG has more than {exc.limit} progressive scans (photos have about 10); "
                "re-save it as an ordinary JPEG.",
            ) from None
        raise ImageError(
            "too_complex",
            f"The {exc.format} file has {exc.value:,} {structure.WHAT[exc.measure]}, over the limit of {exc.limit:,} "
            "that no photo comes near; re-save it with an ordinary image editor or camera app.",
        ) from None


def _open(data: bytes, max_pixels: int) -> Image.Image:
    _register_decoders()
    if not data:
        raise ImageError("empty_file", "The uploaded file is empty; choose a JPEG, PNG, GIF, WebP, BMP or TIFF photo.")
    _walk(data)
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
        estimate = peak_estimate(img)
        with decode_slot(estimate, _prepare_first_frame(img, draft)):
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
        estimate = peak_estimate(img)
        with decode_slot(estimate, _prepare_first_frame(img, (max_side, max_side) if max_side else None)):
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
