"""A byte-level walk of an upload's structure, before any decoder sees it.

Pillow parses markers, chunks, sub-blocks and directory entries one at a time in Python, so a file
of millions of tiny structures costs seconds of CPU and hundreds of MiB however few pixels it has.
This walk counts those structures with `struct` and regexes and stops at the first limit passed,
so it costs a bounded few milliseconds on any file. The limits (`LIMITS`) sit far above what
photos reach (README, "Decode limits"; `python bench/structure_walk.py --real` measures them).
Formats it does not know are left to the decoder.
"""
from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass, field

# format -> measure -> the largest value accepted
LIMITS: dict[str, dict[str, int]] = {
    # Real progressive JPEGs have about 10 scans (mozjpeg up to ~20); a scan bomb repeats one thousands of times.
    "JPEG": {"segments": 2_000, "scans": 100, "blocks_per_kib": 3_072},
    # chunks and data_blocks are also held to a bound that grows with the file (png_chunk_limit, gif_data_limit)
    "PNG": {"chunks": 1 << 30, "text_chunks": 512, "text_bytes": 8 << 20, "inflated": 4 << 20},
    "GIF": {"extension_blocks": 4_096, "data_blocks": 1 << 30},
    "TIFF": {"ifd_entries": 1_024, "values": 65_536},
    "WEBP": {"chunks": 4_096, "canvas_per_frame": 16},
    "BMP": {"rle_pixels": 4_000_000, "rle_bytes": 1 << 20},
}
# What each measure counts, for the refusal's message.
WHAT = {
    "segments": "marker segments", "scans": "scans", "blocks_per_kib": "8x8 blocks per KiB of progressive data (a flat image, not a photo)",
    "chunks": "chunks", "text_chunks": "text and ICC chunks", "text_bytes": "bytes of text and ICC chunks",
    "inflated": "bytes of inflated text and ICC", "extension_blocks": "extension sub-blocks",
    "data_blocks": "image-data sub-blocks", "ifd_entries": "directory entries", "values": "values in one directory entry",
    "canvas_per_frame": "times the first frame's area in its canvas", "rle_pixels": "pixels in RLE compression",
    "rle_bytes": "bytes of RLE data",
}
# A progressive JPEG keeps every DCT coefficient of the image (2 bytes each) whatever the draft;
# its bits per 8x8 block are judged only from this size up.
PROGRESSIVE_JUDGED_FROM_PIXELS = 4_000_000
_FILL = re.compile(rb"\xff+")
_SOS = re.compile(rb"\xff\xda")
_DA_MISSES = 2_048
_SOF = frozenset((0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF))
_FULL_SUB_BLOCKS = re.compile(rb"(?:\xff.{255})*+", re.S)
_NUMERIC_TIFF_TYPES = {3: 2, 4: 4, 5: 8, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8}


class TooComplex(Exception):
    """A measure passed its limit: `measure`, the value reached (at least) and the limit."""

    def __init__(self, fmt: str, measure: str, value: int, limit: int) -> None:
        super().__init__(f"{fmt} {measure} {value} > {limit}")
        self.format, self.measure, self.value, self.limit = fmt, measure, value, limit


@dataclass
class Walk:
    """The measures of one file; `limits` None measures everything (the bench), else stops at the first passed."""

    format: str
    limits: dict[str, int] | None
    measures: dict[str, int] = field(default_factory=dict)

    def cap(self, measure: str) -> int:
        """The limit to compare against in a walker's loop (cheap), before `count` records it."""
        return _UNLIMITED if self.limits is None else self.limits[measure]

    def count(self, measure: str, value: int, limit: int | None = None) -> None:
        self.measures[measure] = max(value, self.measures.get(measure, 0))
        cap = self.cap(measure) if limit is None else limit
        if value > cap:
            raise TooComplex(self.format, measure, value, cap)


_UNLIMITED = 1 << 62


def _matched_to(pattern: re.Pattern[bytes], data: bytes, at: int) -> int:
    """Where a run matched from `at` ends (`at` when none)."""
    found = pattern.match(data, at)
    return found.end() if found else at


def sniff(data: bytes) -> str | None:
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):  # classic and BigTIFF
        return "TIFF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:2] == b"BM":
        return "BMP"
    return None


def measure(data: bytes, limits: dict[str, dict[str, int]] | None = LIMITS) -> Walk | None:
    """Walk `data`; raises TooComplex at the first limit passed. None for a format we do not walk.

    A damaged structure just ends the walk: saying what is damaged is the decoder's job.
    """
    fmt = sniff(data)
    if fmt is None:
        return None
    walk = Walk(fmt, None if limits is None else limits[fmt])
    try:
        _WALKERS[fmt](data, walk)
    except (IndexError, struct.error, zlib.error):
        pass
    return walk


# ---- JPEG ------------------------------------------------------------------------------------
def _jpeg(data: bytes, walk: Walk) -> None:
    """Segments up to the first scan (Pillow reads each in Python; libjpeg takes over from there);
    for a progressive JPEG, its scans (each one more pass over every block, however few its bytes)
    and, when large, its entropy-coded bits per 8x8 block: a flat 50 MP image needs about 2, photos far more."""
    i, n, segments, cap = 2, len(data), 0, walk.cap("segments")
    blocks, progressive = 0, False
    while i + 4 <= n:
        if data[i] != 0xFF:
            return
        marker = data[i + 1]
        if marker == 0xFF:  # fill bytes, however many: one regex step
            i = _matched_to(_FILL, data, i) - 1
            continue
        segments += 1
        if segments > cap:
            walk.count("segments", segments)
        if marker == 0xD9:
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            i += 2
            continue
        length = struct.unpack_from(">H", data, i + 2)[0]
        if marker in _SOF:
            progressive = marker in (0xC2, 0xC6, 0xCA, 0xCE)
            blocks = _jpeg_blocks(data, i + 4)
        i += 2 + length
        if marker == 0xDA:
            if progressive:  # a sequential JPEG's scans each carry every block: their cost is their size
                _jpeg_scans(data, i, walk)
                judged = blocks * 64 >= PROGRESSIVE_JUDGED_FROM_PIXELS
                walk.count("blocks_per_kib", blocks * 1024 // max(1, n - i), None if judged else _UNLIMITED)
            break
    walk.count("segments", segments)


def _jpeg_scans(data: bytes, start: int, walk: Walk) -> None:
    """Start-of-scan markers (0xFF 0xDA, which cannot occur in entropy-coded data) from the first scan
    on, stopping past the limit. First a memchr for each 0xDA, which is all a file dense with 0xFF but
    not 0xDA costs; after a few thousand 0xDA that are no marker (a photo's entropy data has one in
    256 bytes), one byte-by-byte regex pass: neither can be made to cost more than that pass."""
    scans, cap, misses = 1, walk.cap("scans"), 0
    j = data.find(b"\xda", start)
    while j >= 0 and scans <= cap:
        if data[j - 1] == 0xFF:
            scans += 1
        else:
            misses += 1
            if misses > _DA_MISSES:
                break
        j = data.find(b"\xda", j + 1)
    if j >= 0 and scans <= cap:
        found = _SOS.search(data, j - 1)
        while found is not None and scans <= cap:
            scans += 1
            found = _SOS.search(data, found.end())
    walk.count("scans", scans)


def _jpeg_blocks(data: bytes, at: int) -> int:
    """8x8 blocks the decoder holds for a frame header (SOF) at `at`."""
    height, width, components = struct.unpack_from(">HHB", data, at + 1)
    factors = [(data[at + 7 + 3 * c] >> 4, data[at + 7 + 3 * c] & 15) for c in range(components)]
    h_max = max((h for h, _ in factors), default=1) or 1
    v_max = max((v for _, v in factors), default=1) or 1
    return sum(-(-width * h // (8 * h_max)) * -(-height * v // (8 * v_max)) for h, v in factors)


# ---- PNG -------------------------------------------------------------------------------------
_PNG_TEXT = {b"tEXt", b"zTXt", b"iTXt", b"iCCP"}


def png_chunk_limit(data: bytes) -> int:
    """Encoders write pixel data in chunks of 8 KiB (libpng) to 64 KiB (Pillow): a bound that grows with the file."""
    return 1_024 + len(data) // 2_048


def _png(data: bytes, walk: Walk) -> None:
    """Every chunk to IEND (Pillow reads each in Python), and the text and ICC chunks' raw and inflated sizes."""
    i, n, chunks, texts, text_bytes = 8, len(data), 0, 0, 0
    cap = min(walk.cap("chunks"), png_chunk_limit(data))
    inflated = [0]
    unpack = struct.Struct(">I4s").unpack_from
    while i + 8 <= n:
        length, kind = unpack(data, i)
        chunks += 1
        if chunks > cap:
            break
        if kind in _PNG_TEXT:
            texts += 1
            text_bytes += length
            walk.count("text_chunks", texts)
            walk.count("text_bytes", text_bytes)
            _png_inflate(kind, data[i + 8:i + 8 + length], inflated, walk)
        if kind == b"IEND":
            break
        i += 12 + length
    walk.count("chunks", chunks, cap)


def _png_inflate(kind: bytes, body: bytes, inflated: list[int], walk: Walk) -> None:
    """Adds what a compressed text or ICC chunk inflates to, never inflating past the limit."""
    if kind == b"zTXt" or kind == b"iCCP":
        start = body.find(b"\0") + 2  # keyword/name, NUL, method
    elif kind == b"iTXt":
        key = body.find(b"\0")
        if key < 0 or len(body) < key + 3 or body[key + 1] != 1:  # not compressed
            return
        lang = body.find(b"\0", key + 3)
        start = body.find(b"\0", lang + 1) + 1
        if lang < 0 or start <= 0:
            return
    else:
        return
    if start <= 1:
        return
    room = (walk.limits or {}).get("inflated", 1 << 40) - inflated[0]
    inflater = zlib.decompressobj()
    inflated[0] += len(inflater.decompress(body[start:], max(1, room + 1)))
    walk.count("inflated", inflated[0])


# ---- GIF -------------------------------------------------------------------------------------
def gif_data_limit(data: bytes) -> int:
    """Encoders fill data sub-blocks (255 bytes); this is what any GIF of this size may have."""
    return 1_024 + len(data) // 200


def _gif(data: bytes, walk: Walk) -> None:
    """Blocks up to the second image's descriptor: Pillow reads the first frame and looks at the
    second's header to tell an animation; later frames are never reached."""
    flags = data[10]
    i = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    n, ext_blocks, data_blocks, images = len(data), 0, 0, 0
    ext_cap, data_cap = walk.cap("extension_blocks"), min(walk.cap("data_blocks"), gif_data_limit(data))
    while i < n:
        kind = data[i]
        if kind == 0x21:  # extension: label, then sub-blocks
            i, ext_blocks = _sub_blocks(data, i + 2, ext_blocks, ext_cap)
            walk.count("extension_blocks", ext_blocks)
        elif kind == 0x2C:  # image descriptor, local colour table, LZW size, data sub-blocks
            images += 1
            if images == 2:
                return
            flags = data[i + 9]
            i = i + 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0) + 1
            i, data_blocks = _sub_blocks(data, i, data_blocks, data_cap)
            walk.count("data_blocks", data_blocks, data_cap)
        else:  # trailer or damage
            return


def _sub_blocks(data: bytes, i: int, counted: int, cap: int) -> tuple[int, int]:
    """Skips a chain of sub-blocks from `i`: full ones (255 bytes, what encoders write) in one regex
    step, the others one by one, no further than `cap` in all. Returns where it ended and the count."""
    n = len(data)
    while i < n and counted <= cap:
        full = _matched_to(_FULL_SUB_BLOCKS, data, i)
        counted += (full - i) // 256
        i = full
        size = data[i]
        if not size:
            return i + 1, counted
        counted += 1
        i += size + 1
    return i, counted


# ---- TIFF ------------------------------------------------------------------------------------
_SUB_IFDS = (34665, 34853)  # Exif and GPS directories, which Pillow reads with the EXIF


def _tiff(data: bytes, walk: Walk) -> None:
    """The first directory, its Exif/GPS directories and the second directory (Pillow reads it whole
    to tell a multi-page file); classic or BigTIFF. Pillow unpacks every numeric entry into a tuple
    (strip and tile offsets included): `values` bounds the longest."""
    order = "<" if data[:2] == b"II" else ">"
    big = data[2:4] in (b"+\x00", b"\x00+")
    count_f, entry_f, offset_f = (order + "Q", order + "HHQQ", order + "Q") if big else (order + "H", order + "HHII", order + "I")
    count_size, entry_size = (8, 20) if big else (2, 12)
    first = struct.unpack_from(offset_f, data, 8 if big else 4)[0]
    entries, longest = 0, 0
    pending, seen = [(first, True)], set()
    while pending:
        at, follow = pending.pop()
        if not at or at in seen or at + count_size > len(data):
            continue
        seen.add(at)
        count = struct.unpack_from(count_f, data, at)[0]
        entries += count
        walk.count("ifd_entries", entries)
        for e in range(count):
            tag, kind, values, value = struct.unpack_from(entry_f, data, at + count_size + entry_size * e)
            if kind in _NUMERIC_TIFF_TYPES:
                longest = max(longest, values)
            if follow and tag in _SUB_IFDS:
                pending.append((value, False))
        walk.count("values", longest)
        if follow:
            pending.append((struct.unpack_from(offset_f, data, at + count_size + entry_size * count)[0], False))


# ---- WebP ------------------------------------------------------------------------------------
def _webp(data: bytes, walk: Walk) -> None:
    """Top-level chunks, and a canvas (VP8X) much larger than the first frame it is drawn from:
    the decoder fills the whole canvas in RGBA, several copies of it, from a few bytes of frame."""
    i, n, chunks = 12, min(len(data), 8 + struct.unpack_from("<I", data, 4)[0]), 0
    canvas = frame = 0
    cap = walk.cap("chunks")
    while i + 8 <= n and chunks <= cap:
        kind, length = struct.unpack_from("<4sI", data, i)
        chunks += 1
        body = i + 8
        if kind == b"VP8X":
            w, h = int.from_bytes(data[body + 4:body + 7], "little") + 1, int.from_bytes(data[body + 7:body + 10], "little") + 1
            canvas = w * h
        elif kind == b"ANMF" and not frame:
            w, h = int.from_bytes(data[body + 6:body + 9], "little") + 1, int.from_bytes(data[body + 9:body + 12], "little") + 1
            frame = w * h
        elif kind in (b"VP8 ", b"VP8L") and not frame:
            frame = _vp8_pixels(kind, data, body)
        i = body + length + (length & 1)
    walk.count("chunks", chunks)
    if canvas and frame:
        walk.count("canvas_per_frame", -(-canvas // frame))


def _vp8_pixels(kind: bytes, data: bytes, at: int) -> int:
    if kind == b"VP8L":
        bits = int.from_bytes(data[at + 1:at + 5], "little")
        return ((bits & 0x3FFF) + 1) * (((bits >> 14) & 0x3FFF) + 1)
    w, h = struct.unpack_from("<HH", data, at + 6)
    return (w & 0x3FFF) * (h & 0x3FFF)


# ---- BMP -------------------------------------------------------------------------------------
def _bmp(data: bytes, walk: Walk) -> None:
    """Pillow decodes RLE in Python, byte by byte and padding rows pixel by pixel: an RLE BMP is held
    to a pixel limit of its own, and to a size of its compressed data."""
    offset, header = struct.unpack_from("<II", data, 10)
    if header < 40:
        return
    width, height, _planes, _bits, compression = struct.unpack_from("<iiHHI", data, 18)
    if compression not in (1, 2):
        return
    walk.count("rle_pixels", abs(width) * abs(height))
    walk.count("rle_bytes", max(0, len(data) - offset))


_WALKERS = {"JPEG": _jpeg, "PNG": _png, "GIF": _gif, "TIFF": _tiff, "WEBP": _webp, "BMP": _bmp}
