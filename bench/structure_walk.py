"""What the structure walk (shared/structure.py) costs on the worst 20 MiB files, against reading them.

    PYTHONPATH=$PWD .venv/bin/python bench/structure_walk.py [--mib 20] [--real]

Each file is crafted to make the walk do the most work it ever does: issue 18's hostile files (the
walk stops at a limit), and files that stay just under every limit or make its regexes scan every
byte (a JPEG's entropy data all 0xFF 0x00, 100 scans; a GIF of full sub-blocks). The baseline is
reading the same file from disk (page cache) in the same run: `walk / read`. Target: the walk well
under 50 ms on any of them. `--real` prints the largest value of every measure per format over the
team's real photos (and each photo re-saved as GIF, WebP, BMP, TIFF and progressive JPEG), the
figures the README's limits are set against.
"""
from __future__ import annotations

import argparse
import io
import os
import struct
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared import structure  # noqa: E402
from tests.helpers import hostile  # noqa: E402
from tests.helpers import images as make  # noqa: E402


def under_the_limits(size: int) -> dict[str, bytes]:
    """Files as costly to walk as files that pass can be."""
    limits = structure.LIMITS
    jpeg = make.jpeg(64, 48, progressive=True)
    sos = jpeg.index(b"\xff\xda")
    scan_header = jpeg[sos:sos + 2 + struct.unpack_from(">H", jpeg, sos + 2)[0]]
    per_scan = size // limits["JPEG"]["scans"]
    png_chunks = structure.png_chunk_limit(b"\0" * size) - 10
    stuffed = scan_header + b"\xff\x00" * (per_scan // 2)
    gif = make.encode(make.Image.fromarray(make.rgb_array(64, 48)).convert("P"), "GIF")
    start = 13 + (3 << ((gif[10] & 7) + 1) if gif[10] & 0x80 else 0)
    entropy = os.urandom(size // 10).replace(b"\xff", b"\xff\x00")  # what Huffman-coded data looks like
    return {
        "jpeg progressive photo-like": jpeg[:sos] + (scan_header + entropy) * 10 + b"\xff\xd9",
        "jpeg 100 scans of 0xff00": jpeg[:sos] + stuffed * limits["JPEG"]["scans"] + b"\xff\xd9",
        "jpeg 100 scans of ff00da": jpeg[:sos] + (scan_header + b"\xff\x00\xda" * (per_scan // 3)) * limits["JPEG"]["scans"]
                                    + b"\xff\xd9",
        "jpeg 2000 segments + fill": hostile.jpeg_markers(limits["JPEG"]["segments"] - 30)[:-2] + b"\xff" * size + b"\xd9",
        "png chunks at the limit": hostile.png_chunks(png_chunks) + b"\0" * (size - 12 * png_chunks),
        "gif full sub-blocks": gif[:start] + b"\x2c" + struct.pack("<HHHHB", 0, 0, 64, 48, 0) + b"\x08"
                               + (b"\xff" + b"\x01" * 255) * (size // 256) + b"\x00\x3b",
        "tiff 65536-value entries": hostile.tiff_strips(limits["TIFF"]["values"]) + b"\0" * (size - 8 * limits["TIFF"]["values"]),
    }


def best_of(fn, repeats: int = 5) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def walk(data: bytes) -> str:
    try:
        structure.measure(data)
        return "passes"
    except structure.TooComplex as exc:
        return f"refused ({exc.measure})"


def bench(mib: int) -> None:
    size = mib << 20
    files = {**hostile.worst_cases(size), **under_the_limits(size)}
    print(f"{'file':28} {'MiB':>6} {'read ms':>8} {'walk ms':>8} {'walk/read':>9}  verdict")
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in files.items():
            path = Path(tmp) / "f"
            path.write_bytes(data)
            read = best_of(path.read_bytes)
            verdict = walk(data)
            cost = best_of(lambda data=data: walk(data))
            worst = max(worst, cost)
            print(f"{name:28} {len(data) / 2**20:6.1f} {read * 1e3:8.2f} {cost * 1e3:8.2f} {cost / read:9.2f}  {verdict}")
    print(f"worst walk: {worst * 1e3:.1f} ms (target: well under 50 ms)")


def real() -> None:
    from PIL import Image

    photos = sorted(p for p in (ROOT.parent / "shared" / "testdata" / "real").rglob("*")
                    if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not photos:
        sys.exit("no real photos in ../shared/testdata/real")
    largest: dict[str, dict[str, int]] = {}
    counted: dict[str, int] = {}
    for photo in photos:
        data = photo.read_bytes()
        versions = [data]
        rgb = Image.open(io.BytesIO(data)).convert("RGB")
        for fmt, params in (("GIF", {}), ("WEBP", {}), ("BMP", {}), ("TIFF", {"compression": "tiff_lzw"}),
                            ("JPEG", {"progressive": True, "quality": 75})):
            versions.append(make.encode(rgb, fmt, **params))
        for version in versions:
            found = structure.measure(version, None)
            if found is None:
                continue
            counted[found.format] = counted.get(found.format, 0) + 1
            seen = largest.setdefault(found.format, {})
            for name, value in found.measures.items():
                seen[name] = max(value, seen.get(name, 0))
    for fmt, measures in sorted(largest.items()):
        print(f"{fmt} ({counted[fmt]} files):")
        for name, value in sorted(measures.items()):
            limit = structure.LIMITS[fmt][name]
            shown = f"{limit:>10,}" if limit < 1 << 30 else "grows with the file (README)"
            print(f"  {name:18} max {value:>10,}   limit {shown}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=20, help="size of the crafted files (the upload limit)")
    parser.add_argument("--real", action="store_true", help="print the measures of the real photos instead")
    args = parser.parse_args()
    real() if args.real else bench(args.mib)


if __name__ == "__main__":
    main()
