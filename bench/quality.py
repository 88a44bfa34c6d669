"""What the service answers on the team's real photos, per backbone and face detector, and what each stage costs.

Runs the worker's pipeline (decode as the worker does, one backbone pass per batch, the dog rule,
faces only on images the backbone did not call a dog) over ../shared/testdata/real and prints, for
each backbone x face detector: dog / human / neither rates per true class, false faces, zero-shot
breed top-1/top-5 on the dogs whose breed ImageNet knows (all of them, and those not taken from
ImageNet), and ms per image for decode, model and faces. Times are medians on this machine; the
ratios (faces over model) are what carry across machines.

    python bench/quality.py                                 # efficientnet_lite2 and mobilenet_v2, yunet and haar
    python bench/quality.py --backbones mobilenet_v2 --faces haar
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from ml.backbone import load_backbone  # noqa: E402
from ml.faces import DECODE_MAX_SIDE, HaarDetector  # noqa: E402
from ml.pipeline import is_dog  # noqa: E402
from ml.preprocess import to_input  # noqa: E402
from ml.yunet import YuNetDetector  # noqa: E402
from shared.breed_names import COMMON_NAMES  # noqa: E402
from shared.images import load_rgb  # noqa: E402

TEAM = ROOT.parent / "shared"
REAL = TEAM / "testdata" / "real"
# Breed folders whose photos ImageNet files under other names.
ALIASES = {"poodle": {"standard poodle", "miniature poodle", "toy poodle"},
           "blenheim spaniel": {"cavalier king charles spaniel"}}
WEIGHTS = {"efficientnet_lite2": "imagenet", "mobilenet_v2": str(TEAM / "models" / "mobilenet_v2_imagenet.keras"),
           "resnet50": "imagenet", "efficientnetv2b0": "imagenet"}


def norm(name: str) -> str:
    return name.replace("_", " ").strip().lower()


@dataclass
class Photo:
    path: Path
    truth: str  # dog | human | other
    breed: str  # folder name for dogs
    rgb: np.ndarray = field(repr=False, default=None)
    decode_ms: float = 0.0


def load_photos(limit: int | None) -> list[Photo]:
    with (REAL / "labels.tsv").open() as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    photos = []
    for row in rows[:limit] if limit else rows:
        path = REAL / row["path"]
        start = time.perf_counter()
        rgb = load_rgb(path.read_bytes(), 10**9, max_side=DECODE_MAX_SIDE)
        photos.append(Photo(path, row["class"], row["breed"], rgb, (time.perf_counter() - start) * 1000))
    return photos


def known_breeds() -> set[str]:
    names = {norm(n) for n in COMMON_NAMES.values()}
    return names | set(ALIASES)


def breed_hits(names: list[str], breed: str) -> tuple[bool, bool]:
    """(top-1 right, top-5 right) for a folder name against predicted common names."""
    wanted = ALIASES.get(norm(breed), {norm(breed)})
    predicted = [norm(n) for n in names]
    return predicted[0] in wanted, any(p in wanted for p in predicted[:5])


def run_backbone(name: str, photos: list[Photo], batch: int) -> tuple[np.ndarray, float]:
    backbone = load_backbone(name, WEIGHTS[name], ROOT / "var" / "models")
    size = backbone.input_size
    backbone(backbone.preprocess(np.zeros((1, size, size, 3), np.float32)))  # warm-up
    probs, took = [], []
    for i in range(0, len(photos), batch):
        chunk = photos[i:i + batch]
        start = time.perf_counter()
        inputs = np.stack([to_input(p.rgb, size) for p in chunk])
        out, _ = backbone(backbone.preprocess(inputs))
        took.append((time.perf_counter() - start) * 1000 / len(chunk))
        probs.append(out)
    return np.concatenate(probs), float(np.median(took))


def detector(kind: str):
    if kind == "haar":
        return HaarDetector()
    return YuNetDetector(TEAM / "models" / "face_detection_yunet_2026may.onnx")


def evaluate(photos: list[Photo], probs: np.ndarray, faces, model_ms: float) -> dict:
    counts = {c: {"dog": 0, "human": 0, "neither": 0, "n": 0} for c in ("dog", "human", "other")}
    false_faces = {"other": 0, "dog": 0}
    face_ms, top1, top5, known = [], [], [], []
    dog_names = [COMMON_NAMES[i] for i in range(151, 269)]
    known_set = known_breeds()
    for photo, row in zip(photos, probs):
        start = time.perf_counter()
        boxes = faces.detect(photo.rgb)  # timed on every image; the service runs it only on non-dogs
        face_ms.append((time.perf_counter() - start) * 1000)
        if photo.truth in false_faces and boxes:
            false_faces[photo.truth] += 1
        dog = is_dog(row, "mass")[0]
        kind = "dog" if dog else ("human" if boxes else "neither")
        counts[photo.truth][kind] += 1
        counts[photo.truth]["n"] += 1
        if photo.truth == "dog" and norm(photo.breed) in known_set:
            order = np.argsort(-row[151:269])[:5]
            hit1, hit5 = breed_hits([dog_names[i] for i in order], photo.breed)
            top1.append(hit1)
            top5.append(hit5)
            known.append(not photo.path.name.startswith("imagenet__"))
    fresh = np.array(known, bool)
    share_non_dog = float(np.mean([not is_dog(r, "mass")[0] for r in probs]))
    faces_ms = float(np.median(face_ms))
    return {
        "dogs": (counts["dog"]["dog"], counts["dog"]["n"]),
        "humans": (counts["human"]["human"], counts["human"]["n"]),
        "others neither": (counts["other"]["neither"], counts["other"]["n"]),
        "false faces others": (false_faces["other"], counts["other"]["n"]),
        "dogs with a face": (false_faces["dog"], counts["dog"]["n"]),
        "top1 (known breeds)": float(np.mean(top1)),
        "top5 (known breeds)": float(np.mean(top5)),
        "top1 (not from ImageNet)": float(np.mean(np.array(top1)[fresh])),
        "top5 (not from ImageNet)": float(np.mean(np.array(top5)[fresh])),
        "dogs scored (known / not from ImageNet)": (len(top1), int(fresh.sum())),
        "decode ms/img": float(np.median([p.decode_ms for p in photos])),
        "model ms/img (batched)": model_ms,
        "faces ms/img (when run)": faces_ms,
        "faces run on (share of images)": share_non_dog,
        "faces share of CPU per image": faces_ms * share_non_dog / (model_ms + faces_ms * share_non_dog),
    }


def shown(value) -> str:
    if isinstance(value, tuple):
        return "/".join(str(v) for v in value)
    return f"{value:.1f}" if value > 1 else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", default="efficientnet_lite2,mobilenet_v2")
    parser.add_argument("--faces", default="yunet,haar")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--limit", type=int, help="only the first N photos (a quick look)")
    args = parser.parse_args()
    if not REAL.is_dir():
        print(f"skipped: {REAL} is absent (the team's real photos live beside the checkout, not on a user's machine)")
        return
    photos = load_photos(args.limit)
    columns: dict[str, dict] = {}
    for name in args.backbones.split(","):
        probs, model_ms = run_backbone(name, photos, args.batch)
        for kind in args.faces.split(","):
            columns[f"{name} + {kind}"] = evaluate(photos, probs, detector(kind), model_ms)
    rows = list(next(iter(columns.values())))
    width = max(len(r) for r in rows)
    print(f"{len(photos)} real photos from {REAL}\n")
    print(f"| {'':<{width}} | " + " | ".join(columns) + " |")
    print(f"|{'-' * (width + 2)}|" + "|".join("-" * (len(c) + 2) for c in columns) + "|")
    for row in rows:
        print(f"| {row:<{width}} | " + " | ".join(f"{shown(columns[c][row]):<{len(c)}}" for c in columns) + " |")


if __name__ == "__main__":
    main()
