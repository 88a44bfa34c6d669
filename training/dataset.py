"""Folder-per-class data sets: find the classes and splits, make a seeded stratified split, read images."""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ml.imagenet import readable
from ml.preprocess import to_input
from shared.errors import FixedCodeError
from shared.formats import IMAGE_SUFFIXES
from shared.images import ImageError, load_rgb

SPLIT_NAMES = {"train": ("train",), "valid": ("valid", "val", "validation"), "test": ("test",)}
MAX_PIXELS = 200_000_000


class DatasetError(FixedCodeError, ValueError):
    """The folder is not a data set we can train on; the message says what layout we expect."""

    code = "bad_dataset"


@dataclass
class Split:
    """Parallel lists: image paths and their class indices."""

    paths: list[Path] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, keep: list[int]) -> "Split":
        return Split([self.paths[i] for i in keep], [self.labels[i] for i in keep])


@dataclass
class Dataset:
    name: str
    classes: list[str]  # folder names, e.g. '001.Affenpinscher'
    splits: dict[str, Split]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    made_split: bool = False

    @property
    def labels(self) -> list[str]:
        return [readable(c) for c in self.classes]


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _scan(folder: Path, classes: list[str], skipped: list[tuple[str, str]]) -> Split:
    split = Split()
    for index, name in enumerate(classes):
        class_dir = folder / name
        if not class_dir.is_dir():
            continue
        for path in sorted(class_dir.rglob("*")):
            if path.is_dir():
                continue
            if path.suffix.lower() not in IMAGE_SUFFIXES or path.name.startswith("."):
                skipped.append((str(path), "not an image file"))
                continue
            split.paths.append(path)
            split.labels.append(index)
    return split


def stratified_split(split: Split, fractions: tuple[float, float], seed: int) -> tuple[Split, Split, Split]:
    """Per class: shuffle with the seed, take valid and test shares, keep at least one image to train on."""
    rng = random.Random(seed)
    by_class: dict[int, list[int]] = {}
    for i, label in enumerate(split.labels):
        by_class.setdefault(label, []).append(i)
    train, valid, test = [], [], []
    for label in sorted(by_class):
        idx = by_class[label]
        rng.shuffle(idx)
        n_valid = round(len(idx) * fractions[0]) if len(idx) >= 3 else 0
        n_test = round(len(idx) * fractions[1]) if len(idx) >= 3 else 0
        valid += idx[:n_valid]
        test += idx[n_valid:n_valid + n_test]
        train += idx[n_valid + n_test:]
    return split.subset(sorted(train)), split.subset(sorted(valid)), split.subset(sorted(test))


def fraction(split: Split, share: float, seed: int) -> Split:
    """A stratified share of a split (at least one image per class), for the data-size study."""
    if share >= 1.0:
        return split
    rng = random.Random(seed)
    keep: list[int] = []
    for label in sorted(set(split.labels)):
        idx = [i for i, y in enumerate(split.labels) if y == label]
        rng.shuffle(idx)
        keep += idx[:max(1, round(len(idx) * share))]
    return split.subset(sorted(keep))


def load_dataset(folder: Path | str, seed: int = 0, valid_share: float = 0.1, test_share: float = 0.1) -> Dataset:
    """train/valid/test subfolders when present; otherwise class folders at the top, split 80/10/10."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DatasetError(f"{folder} is not a folder; give a folder with one subfolder per class")
    skipped: list[tuple[str, str]] = []
    present = {key: next((folder / n for n in names if (folder / n).is_dir()), None)
               for key, names in SPLIT_NAMES.items()}
    if present["train"] is not None:
        classes = _class_dirs(present["train"])
        names = [c.name for c in classes]
        splits = {key: _scan(path, names, skipped) if path else Split() for key, path in present.items()}
        made = False
        if not splits["valid"] or not splits["test"]:
            shares = (0.0 if splits["valid"] else valid_share, 0.0 if splits["test"] else test_share)
            train, valid, test = stratified_split(splits["train"], shares, seed)
            splits = {"train": train, "valid": splits["valid"] or valid, "test": splits["test"] or test}
            made = True
    else:
        names = [c.name for c in _class_dirs(folder)]
        everything = _scan(folder, names, skipped)
        train, valid, test = stratified_split(everything, (valid_share, test_share), seed)
        splits, made = {"train": train, "valid": valid, "test": test}, True
    if len(names) < 2 or not splits["train"]:
        raise DatasetError(
            f"{folder}: found {len(names)} class folder(s) with {len(splits['train'])} training images; "
            "expected CLASS/IMAGE files (e.g. 001.Affenpinscher/x.jpg), optionally under train/ valid/ test/"
        )
    return Dataset(name=folder.name, classes=names, splits=splits, skipped=skipped, made_split=made)


def read_bytes(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ImageError("unreadable", f"cannot read ({exc.strerror})") from None


def decode(data: bytes, size: int) -> np.ndarray:
    """size x size x 3 float32 in 0..255, exactly as the worker prepares an upload; raises ImageError."""
    return to_input(load_rgb(data, MAX_PIXELS, max_side=size), size)


def read_image(path: Path, size: int) -> np.ndarray:
    return decode(read_bytes(path), size)
