#!/usr/bin/env python
"""Face detectors on the team's real photos: hits on humans, false faces elsewhere, ms per image.

Haar (the current detector) is the same-run baseline; each YuNet setting is printed beside it as
counts and as a time ratio. One OpenCV thread, images decoded once before timing.

    python bench/faces.py --model ../shared/models/face_detection_yunet_2026may.onnx
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ml.faces import HaarDetector  # noqa: E402
from ml.yunet import YuNetDetector  # noqa: E402
from shared.images import load_rgb  # noqa: E402

BORDERS = {"constant": cv2.BORDER_CONSTANT, "replicate": cv2.BORDER_REPLICATE, "reflect": cv2.BORDER_REFLECT_101}


class Padded:
    """A detector run on the image with a border of `fraction` of its short side, boxes mapped back."""

    def __init__(self, detector, fraction: float, border: int) -> None:
        self.detector, self.fraction, self.border = detector, fraction, border

    def detect(self, rgb):
        height, width = rgb.shape[:2]
        pad = round(self.fraction * min(height, width))
        padded = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, self.border, value=(0, 0, 0))
        boxes = []
        for b in self.detector.detect(padded):
            x0, y0 = max(0, b["x"] - pad), max(0, b["y"] - pad)
            x1, y1 = min(width, b["x"] + b["w"] - pad), min(height, b["y"] + b["h"] - pad)
            if x1 > x0 and y1 > y0:
                boxes.append({"x": x0, "y": y0, "w": x1 - x0, "h": y1 - y0})
        return boxes


def photos(root: Path, folder: str) -> list[Path]:
    return sorted(p for p in (root / folder).rglob("*") if p.is_file())


def measure(detector, images: dict[str, list], repeat: int) -> dict[str, object]:
    """Counts, and per image the fastest of `repeat` runs (other users of the CPU only add time)."""
    found, times, misses = {}, [], []
    for folder, items in images.items():
        hits = 0
        for path, rgb in items:
            best = float("inf")
            for _ in range(repeat):
                start = time.perf_counter()
                boxes = detector.detect(rgb)
                best = min(best, time.perf_counter() - start)
            times.append(best)
            hits += bool(boxes)
            if (folder == "humans") != bool(boxes):
                misses.append(f"{folder}/{path.name}")
        found[folder] = hits
    return {**found, "ms": 1000 * statistics.median(times), "mean_ms": 1000 * statistics.fmean(times), "misses": misses}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT.parent / "shared/models/face_detection_yunet_2026may.onnx"))
    parser.add_argument("--data", default=str(ROOT.parent / "shared/testdata/real"))
    parser.add_argument("--max-sides", default="640,320")
    parser.add_argument("--pads", default="0,0.25,0.5")
    parser.add_argument("--borders", default="constant")
    parser.add_argument("--threshold", type=float, default=0.9)
    parser.add_argument("--repeat", type=int, default=3, help="runs per image; the fastest counts")
    parser.add_argument("--no-haar", action="store_true")
    parser.add_argument("--misses", action="store_true", help="list the photos each setting gets wrong")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    root = Path(args.data)
    images = {f: [(p, load_rgb(p.read_bytes(), 10**9)) for p in photos(root, f)] for f in ("humans", "other", "dogs")}
    counts = {f: len(v) for f, v in images.items()}
    rows = []
    if not args.no_haar:
        rows.append(("Haar (current)", measure(HaarDetector(), images, args.repeat)))
    for side in map(int, args.max_sides.split(",")):
        for pad in map(float, args.pads.split(",")):
            for border in args.borders.split(",") if pad else ["-"]:
                # The border is added first, then the padded image is scaled to `side`.
                detector = YuNetDetector(args.model, score_threshold=args.threshold, max_side=side)
                if pad:
                    detector = Padded(detector, pad, BORDERS[border])
                rows.append((f"YuNet max {side} pad {pad:g} {border}", measure(detector, images, args.repeat)))
    base = rows[0][1]["mean_ms"]
    print(f"| detector | humans found /{counts['humans']} | false faces on others /{counts['other']} "
          f"| dogs with a face /{counts['dogs']} | ms per image (median) | ms (mean) | mean time / first row |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, r in rows:
        print(f"| {name} | {r['humans']} | {r['other']} | {r['dogs']} | {r['ms']:.1f} | {r['mean_ms']:.1f} | {r['mean_ms'] / base:.2f} |")
    if args.misses:
        for name, r in rows:
            print(f"{name}: {', '.join(r['misses']) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
