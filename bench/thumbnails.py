#!/usr/bin/env python
"""What making a thumbnail at upload adds to the web's work, and what it saves the pages, on the team's
real photos. Baseline, same run: the upload's own check (`shared.images.inspect`); then the check plus
the thumbnail (`shared.thumbnails.make`), on the real photos and on one generated 12 MP phone-sized JPEG. Also the bytes a history page loads per photo, before
(the original) and after (the thumbnail). One thread, photos read into memory before timing.

    python bench/thumbnails.py [--photos ../shared/testdata/real] [--limit 120]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared import thumbnails  # noqa: E402
from shared.formats import IMAGE_SUFFIXES  # noqa: E402
from shared.images import inspect  # noqa: E402

MAX_PIXELS = 50_000_000


def timed(work, items) -> float:
    start = time.perf_counter()
    for item in items:
        work(item)
    return (time.perf_counter() - start) * 1000 / len(items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--photos", type=Path, default=ROOT.parent / "shared" / "testdata" / "real")
    parser.add_argument("--limit", type=int, default=120)
    args = parser.parse_args()
    paths = sorted(p for p in args.photos.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[:args.limit]
    if not paths:
        raise SystemExit(f"no photos under {args.photos}")
    photos = [p.read_bytes() for p in paths]
    check_ms, both_ms, again_ms = _three(photos)
    sizes = [len(thumbnails.make(d, MAX_PIXELS)) for d in photos]
    print(f"{len(photos)} photos from {args.photos}")
    print(f"upload check alone:                  {check_ms:7.2f} ms/photo (baseline)")
    print(f"check + thumbnail from its decode:   {both_ms:7.2f} ms/photo  ratio {both_ms / check_ms:.2f}")
    print(f"check + thumbnail by a second decode:{again_ms:7.2f} ms/photo  ratio {again_ms / check_ms:.2f}")
    print(f"history page bytes/photo:  original {statistics.median(map(len, photos)) / 1024:.0f} KiB, "
          f"thumbnail {statistics.median(sizes) / 1024:.1f} KiB (medians)  ratio "
          f"{statistics.median(sizes) / statistics.median(map(len, photos)):.3f}")
    phone = _phone_photo()  # the team's photos are small; a phone's are 12 MP
    check_ms, both_ms, again_ms = _three([phone] * 5)
    print(f"a 12 MP phone-sized JPEG: check {check_ms:.1f} ms; + thumbnail from its decode {both_ms:.1f} ms "
          f"(ratio {both_ms / check_ms:.2f}), by a second decode {again_ms:.1f} ms (ratio {again_ms / check_ms:.2f}); "
          f"{len(phone) / 1024:.0f} KiB -> {len(thumbnails.make(phone, MAX_PIXELS)) / 1024:.1f} KiB")


def _three(photos: list[bytes]) -> tuple[float, float, float]:
    """ms per photo: the check; the check keeping its pixels for the thumbnail (what web does); the
    check, then the thumbnail from the bytes again (what an image stored before thumbnails gets)."""
    return (timed(lambda d: inspect(d, MAX_PIXELS), photos),
            timed(lambda d: thumbnails.encode(inspect(d, MAX_PIXELS, reduced_to=thumbnails.MAX_SIDE).reduced), photos),
            timed(lambda d: (inspect(d, MAX_PIXELS), thumbnails.make(d, MAX_PIXELS)), photos))


def _phone_photo() -> bytes:
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:3024, 0:4032]
    base = np.stack([xx * 255 // 4031, yy * 255 // 3023, (xx // 7 + yy // 5) % 256], axis=-1)
    pixels = (base + rng.integers(0, 40, base.shape)).clip(0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=90)
    return out.getvalue()


if __name__ == "__main__":
    main()
