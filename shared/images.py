"""Decode untrusted image bytes with Pillow: sniff the real format, refuse bombs, normalise to RGB.

Web calls `inspect` to accept or refuse an upload; the worker calls `load_rgb` on the stored bytes.
Both use the same rules, so whatever the API accepted, the worker can read.
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Formats a browser shows as an image and that cannot carry script. SVG is never accepted.
ALLOWED_FORMATS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "BMP": "bmp", "TIFF": "tiff"}
MIME_TYPES = {
    "JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif",
    "WEBP": "image/webp", "BMP": "image/bmp", "TIFF": "image/tiff",
}
MIN_SIDE = 8


class ImageError(ValueError):
    """An image we refuse; `code` is stable for clients, `message` says what to do."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width: int
    height: int
    frames: int

    @property
    def extension(self) -> str:
        return ALLOWED_FORMATS[self.format]

    @property
    def mime_type(self) -> str:
        return MIME_TYPES[self.format]


def _open(data: bytes, max_pixels: int) -> Image.Image:
    if not data:
        raise ImageError("empty_file", "The uploaded file is empty; choose a JPEG, PNG, GIF, WebP, BMP or TIFF photo.")
    try:
        img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise ImageError("image_too_large", "The image claims far more pixels than we accept; scale it down.", 413) from None
    except UnidentifiedImageError:
        raise ImageError(
            "not_an_image",
            "The file is not an image we can read (the bytes are not JPEG, PNG, GIF, WebP, BMP or TIFF, "
            "whatever its name says).",
            415,
        ) from None
    except Exception as exc:  # Pillow raises many types on hostile headers
        raise ImageError("corrupt_image", f"The image header is damaged ({type(exc).__name__}).") from None
    if img.format not in ALLOWED_FORMATS:
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


def _decode(img: Image.Image, max_side: int | None) -> Image.Image:
    """First frame, EXIF orientation applied, 8-bit RGB (from L, LA, P, RGBA, CMYK, I;16, ...)."""
    img.seek(0)
    if max_side and img.format == "JPEG":
        # DCT-domain downscale: far less work for big photos; never below what is asked for.
        img.draft("RGB", (max_side, max_side))
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        img.load()
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.uint32)
        scale = 257 if arr.max() > 255 else 1
        img = Image.fromarray((arr // scale).clip(0, 255).astype(np.uint8), "L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB")


def inspect(data: bytes, max_pixels: int) -> ImageInfo:
    """Accept or refuse an upload: decodes the whole first frame, so truncated files are caught here."""
    img = _open(data, max_pixels)
    try:
        fmt = img.format
        frames = getattr(img, "n_frames", 1)
        width, height = _decode(img, None).size  # upright, after EXIF rotation
    except ImageError:
        raise
    except Exception as exc:
        raise ImageError(
            "corrupt_image",
            f"The image could not be decoded ({type(exc).__name__}: {exc}); it may be truncated. Upload the whole file again.",
        ) from None
    return ImageInfo(format=fmt, width=width, height=height, frames=frames)


def load_rgb(data: bytes, max_pixels: int, max_side: int | None = None) -> np.ndarray:
    """HxWx3 uint8 RGB of the first frame, upright. `max_side` lets JPEG decode at reduced size."""
    img = _open(data, max_pixels)
    try:
        return np.asarray(_decode(img, max_side))
    except ImageError:
        raise
    except Exception as exc:
        raise ImageError("corrupt_image", f"The image could not be decoded ({type(exc).__name__}: {exc}).") from None
