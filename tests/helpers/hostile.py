"""Issue 18's cheap-to-send, costly-to-parse files, built byte by byte at any size.

Each takes the number of repeated structures; the tests send small ones (the limits are counts, so
a file just past a limit is as hostile to the walk as a 20 MiB one), bench/structure_walk.py 20 MiB ones.
"""
from __future__ import annotations

import struct
import zlib

from PIL import Image

from tests.helpers import images as make


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def jpeg_markers(n: int) -> bytes:
    """A small real JPEG with `n` empty comment markers after its start (Pillow reads each in Python)."""
    body = make.jpeg(64, 48)
    return body[:2] + b"\xff\xfe\x00\x02" * n + body[2:]


def tiff_strips(n: int, big: bool = False) -> bytes:
    """An 8-pixel-wide grayscale TIFF (or BigTIFF) of `n` one-row strips, every strip the same 8 bytes."""
    offset, long_type = ("Q", 16) if big else ("I", 4)
    entry, entry_size, count = ("<HHQQ", 20, "<Q") if big else ("<HHII", 12, "<H")
    header = b"II+\x00" + struct.pack("<HHQ", 8, 0, 16) if big else b"II*\x00" + struct.pack("<I", 8)
    entries = [(256, 4, 1, 8), (257, 4, 1, n), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
               (277, 3, 1, 1), (278, 4, 1, 1)]
    ifd_size = struct.calcsize(count) + entry_size * (len(entries) + 2) + struct.calcsize(offset)
    offsets_at = len(header) + ifd_size
    counts_at = offsets_at + struct.calcsize(offset) * n
    pixels_at = counts_at + struct.calcsize(offset) * n
    entries += [(273, long_type, n, offsets_at), (279, long_type, n, counts_at)]
    ifd = (struct.pack(count, len(entries)) + b"".join(struct.pack(entry, *e) for e in sorted(entries))
           + b"\0" * struct.calcsize(offset))
    return (header + ifd + struct.pack("<" + offset, pixels_at) * n + struct.pack("<" + offset, 8) * n
            + bytes(range(0, 256, 32)))


def png_chunks(n: int) -> bytes:
    """A real 64x48 PNG with `n` empty private ancillary chunks before its pixels."""
    body = make.png(64, 48)
    ihdr_end = 8 + 25
    return body[:ihdr_end] + _png_chunk(b"spAm", b"") * n + body[ihdr_end:]


def gif_comment(n: int) -> bytes:
    """A real 64x48 GIF whose comment is `n` one-byte sub-blocks."""
    body = make.encode(Image.fromarray(make.rgb_array(64, 48)).convert("P"), "GIF")
    flags = body[10]
    start = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    return body[:start] + b"\x21\xfe" + b"\x01x" * n + b"\x00" + body[start:]


def bmp_rle8(width: int, height: int, rows: int | None = None) -> bytes:
    """An 8-bit RLE BMP of one-pixel runs (two bytes of file per pixel, each decoded by Pillow in Python)
    in its first `rows` rows (all by default); the rest of the canvas Pillow pads pixel by pixel."""
    row = b"\x01\x07" * width + b"\x00\x00"
    rle = row * (height if rows is None else rows) + b"\x00\x01"
    palette = b"".join(bytes((i, i, i, 0)) for i in range(256))
    offset = 14 + 40 + len(palette)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 1, len(rle), 2835, 2835, 256, 0)
    return b"BM" + struct.pack("<IHHI", offset + len(rle), 0, 0, offset) + info + palette + rle


def webp_canvas(width: int = 7071, height: int = 7071) -> bytes:
    """A VP8X WebP of a `width` x `height` canvas drawn from an 8x8 lossless frame: about 100 bytes."""
    small = make.encode(Image.new("RGB", (8, 8), (200, 30, 30)), "WEBP", lossless=True)
    frame = small[12:]  # the VP8L chunk
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\0\0\0\0" + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    payload = b"WEBP" + vp8x + frame
    return b"RIFF" + struct.pack("<I", len(payload)) + payload


def flat_progressive_cmyk(width: int, height: int) -> bytes:
    """A one-colour progressive CMYK JPEG: ~2 bits per 8x8 block, yet the decoder holds every coefficient."""
    return make.encode(Image.new("CMYK", (width, height), (10, 20, 30, 40)), "JPEG", progressive=True, quality=90)


def worst_cases(target_bytes: int) -> dict[str, bytes]:
    """Every hostile file at about `target_bytes` (the bench's 20 MiB), most structures the size allows."""
    return {
        "jpeg empty markers": jpeg_markers(target_bytes // 4),
        "tiff one-row strips": tiff_strips(target_bytes // 8),
        "png empty chunks": png_chunks(target_bytes // 12),
        "gif comment sub-blocks": gif_comment(target_bytes // 2),
        "bmp rle8 one-pixel runs": bmp_rle8(4096, target_bytes // (2 * 4096 + 2)),
        "webp 50 MP canvas": webp_canvas(),
    }


# name -> (a file just past one limit, the measure it passes). The limits are counts, so these are
# as hostile to the walk as 20 MiB ones, and small enough to send in a test.
JUST_PAST_THE_LIMITS = {
    "jpeg of empty comment markers": (lambda: jpeg_markers(2_100), "segments"),
    "tiff of one-row strips": (lambda: tiff_strips(70_000), "values"),
    "bigtiff of one-row strips": (lambda: tiff_strips(70_000, big=True), "values"),
    "png of empty chunks": (lambda: png_chunks(2_000), "chunks"),
    "gif comment of one-byte sub-blocks": (lambda: gif_comment(5_000), "extension_blocks"),
    "bmp rle8 of one-pixel runs": (lambda: bmp_rle8(1024, 600), "rle_bytes"),
    "bmp rle8 on a 4.4 MP canvas": (lambda: bmp_rle8(2100, 2100, rows=2), "rle_pixels"),
    "webp with a 50 MP canvas": (lambda: webp_canvas(), "canvas_per_frame"),
    "flat progressive cmyk jpeg": (lambda: flat_progressive_cmyk(2500, 2000), "blocks_per_kib"),
}
