"""Images the tests make: real encoders (Pillow), real formats, real damage."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image


def rgb_array(width: int = 96, height: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 255 // max(width - 1, 1), yy * 255 // max(height - 1, 1), (xx + yy) % 256], axis=-1)
    return (base + rng.integers(0, 30, base.shape)).clip(0, 255).astype(np.uint8)


def encode(img: Image.Image, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def jpeg(width: int = 96, height: int = 64, seed: int = 0, **params) -> bytes:
    return encode(Image.fromarray(rgb_array(width, height, seed)), "JPEG", quality=90, **params)


def png(width: int = 96, height: int = 64, seed: int = 0, mode: str = "RGB") -> bytes:
    return encode(Image.fromarray(rgb_array(width, height, seed)).convert(mode), "PNG")


def cmyk_jpeg(width: int = 80, height: int = 60) -> bytes:
    return encode(Image.fromarray(rgb_array(width, height)).convert("CMYK"), "JPEG")


def png16(width: int = 80, height: int = 60) -> bytes:
    arr = (np.linspace(0, 65535, width * height).reshape(height, width)).astype(np.uint16)
    return encode(Image.fromarray(arr), "PNG")


def rgba_png(width: int = 80, height: int = 60) -> bytes:
    arr = np.dstack([rgb_array(width, height), np.full((height, width), 128, np.uint8)])
    return encode(Image.fromarray(arr, "RGBA"), "PNG")


def animated_gif(width: int = 64, height: int = 48, frames: int = 3) -> bytes:
    imgs = [Image.new("RGB", (width, height), (255 * (i == 0), 255 * (i == 1), 255 * (i == 2))) for i in range(frames)]
    buf = io.BytesIO()
    imgs[0].save(buf, "GIF", save_all=True, append_images=imgs[1:], duration=100, loop=0)
    return buf.getvalue()


def exif_rotated_jpeg(width: int = 120, height: int = 60, orientation: int = 6) -> bytes:
    """Stored landscape, EXIF says rotate 90 degrees: a viewer shows it portrait."""
    img = Image.fromarray(rgb_array(width, height))
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(img, "JPEG", exif=exif.tobytes())


def heic(width: int = 96, height: int = 64, seed: int = 0) -> bytes:
    """A real HEIC (HEVC in HEIF, as an iPhone writes) made by pillow-heif's encoder (libheif + x265)."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    return encode(Image.fromarray(rgb_array(width, height, seed)), "HEIF", quality=85)


def avif(width: int = 96, height: int = 64, seed: int = 0) -> bytes:
    """A real AVIF (AV1 in HEIF) made by Pillow's own AVIF plugin (libavif, Pillow 11.3 and later)."""
    return encode(Image.fromarray(rgb_array(width, height, seed)), "AVIF", quality=85)


def truncated(data: bytes, keep: float = 0.5) -> bytes:
    return data[: int(len(data) * keep)]


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR claiming a huge size, and no pixel data: a decompression bomb's shape."""
    import struct
    import zlib

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _jpeg_scans(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each scan (SOS header and its entropy-coded data) of a JPEG Pillow wrote."""
    import struct

    i, scans = 2, []
    while data[i + 1] != 0xD9:
        marker = data[i + 1]
        end = i + 2 + struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker == 0xDA:
            while data[end] != 0xFF or data[end + 1] == 0 or 0xD0 <= data[end + 1] <= 0xD7:
                end += 1
            scans.append((i, end))
        i = end
    return scans


def progressive_scan_bomb(width: int = 2000, height: int = 2000, repeats: int = 20_000) -> bytes:
    """A valid progressive JPEG whose smallest refinement scan is repeated `repeats` times: a few bytes
    each to send, one pass over every block each to decode (the "scan bomb")."""
    data = encode(Image.new("RGB", (width, height), (120, 80, 40)), "JPEG", progressive=True)
    start, end = min(_jpeg_scans(data)[1:], key=lambda scan: scan[1] - scan[0])
    last = _jpeg_scans(data)[-1][1]
    return data[:last] + data[start:end] * repeats + data[last:]


def flat_png(width: int, height: int, mode: str = "RGBA") -> bytes:
    """A tiny file with a huge pixel count: one colour compresses to almost nothing."""
    return encode(Image.new(mode, (width, height), (30, 60, 90, 255)[: len(mode)]), "PNG")


def mpo(width: int = 64, height: int = 48) -> bytes:
    """A JPEG carrying a second image (MPF), as phones write for HDR/portrait shots: red, then green."""
    first = Image.new("RGB", (width, height), (220, 10, 10))
    second = Image.new("RGB", (width, height), (10, 220, 10))
    buf = io.BytesIO()
    first.save(buf, "MPO", save_all=True, append_images=[second])
    return buf.getvalue()


def tiff_with_broken_later_page(width: int = 64, height: int = 48) -> bytes:
    """A two-page TIFF whose second page's directory points past the end of the file: only page one is whole."""
    import struct

    pages = [Image.fromarray(rgb_array(width, height)), Image.fromarray(rgb_array(width, height, seed=1))]
    buf = io.BytesIO()
    pages[0].save(buf, "TIFF", save_all=True, append_images=pages[1:])
    data = bytearray(buf.getvalue())
    first_ifd = struct.unpack("<I", data[4:8])[0]
    entries = struct.unpack("<H", data[first_ifd:first_ifd + 2])[0]
    next_at = first_ifd + 2 + 12 * entries
    data[next_at:next_at + 4] = struct.pack("<I", len(data) + 10_000)
    return bytes(data)
