"""A small generated data set whose classes differ by texture and shape, never by one flat colour.

For tests, benchmarks and a first dry run of the tools: only a learner that sees structure can
separate stripes from checks from rings from blotches, since every image draws random colours.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# Folder names in the Udacity style; Zebra, Honeycomb and Maze are also ImageNet classes.
CLASSES = ("001.Zebra", "002.Honeycomb", "003.Maze", "004.Blotches")


def _grid(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    return xx * np.cos(angle) + yy * np.sin(angle), -xx * np.sin(angle) + yy * np.cos(angle)


def pattern(kind: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """0..1 float mask: stripes, checks, rings or smooth blotches, with random scale, angle and phase."""
    u, v = _grid(size, rng)
    period = rng.uniform(6, 12)
    phase = rng.uniform(0, 2 * np.pi)
    if kind == 0:
        return (np.sin(2 * np.pi * u / period + phase) > 0).astype(np.float32)
    if kind == 1:
        return ((np.sin(2 * np.pi * u / period + phase) > 0) ^ (np.sin(2 * np.pi * v / period) > 0)).astype(np.float32)
    if kind == 2:
        cy, cx = rng.uniform(0, size, 2)
        yy, xx = np.mgrid[0:size, 0:size]
        radius = np.hypot(yy - cy, xx - cx)
        return (np.sin(2 * np.pi * radius / period + phase) > 0).astype(np.float32)
    coarse = rng.random((size // 8 + 2, size // 8 + 2)).astype(np.float32)
    smooth = np.asarray(Image.fromarray((coarse * 255).astype(np.uint8)).resize((size, size), Image.BICUBIC))
    return (smooth > 127).astype(np.float32)


def image(kind: int, size: int, rng: np.random.Generator) -> np.ndarray:
    mask = pattern(kind, size, rng)[..., None]
    fg, bg = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    pixels = mask * fg + (1 - mask) * bg + rng.normal(0, 12, (size, size, 3))
    return pixels.clip(0, 255).astype(np.uint8)


def write_dataset(root: Path, per_class: int = 30, size: int = 64, seed: int = 0,
                  classes: tuple[str, ...] = CLASSES, splits: dict[str, int] | None = None) -> Path:
    """CLASS/NNN.png under root (or under root/<split>/ with that many images per class each)."""
    rng = np.random.default_rng(seed)
    layout = splits or {"": per_class}
    for split, count in layout.items():
        for kind, name in enumerate(classes):
            folder = Path(root) / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                Image.fromarray(image(kind % 4, size, rng)).save(folder / f"{i:03d}.png")
    return Path(root)
