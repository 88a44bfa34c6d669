"""A small generated data set whose classes differ by texture and shape, never by one flat colour.

For tests, benchmarks and a first dry run of the tools: only a learner that sees structure can
separate stripes from checks from rings from blotches, since every image draws random colours.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# Folder names in the Udacity style; Zebra, Honeycomb and Maze are also ImageNet classes (which
# exercises the ImageNet-row prior), Static is not.
CLASSES = ("001.Zebra", "002.Honeycomb", "003.Maze", "004.Static")


def _grid(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    return xx * np.cos(angle) + yy * np.sin(angle), -xx * np.sin(angle) + yy * np.cos(angle)


def pattern(kind: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """0/1 mask: stripes, checks, rings or pixel noise, at a random scale, angle and phase."""
    u, v = _grid(size, rng)
    period = rng.uniform(4, 8)
    phase = rng.uniform(0, 2 * np.pi)
    if kind == 0:
        return (np.sin(2 * np.pi * u / period + phase) > 0).astype(np.float32)
    if kind == 1:
        return ((np.sin(2 * np.pi * u / period + phase) > 0) ^ (np.sin(2 * np.pi * v / period) > 0)).astype(np.float32)
    if kind == 2:
        cy, cx = rng.uniform(0, size, 2)
        yy, xx = np.mgrid[0:size, 0:size]
        return (np.sin(np.pi * np.hypot(yy - cy, xx - cx) / period + phase) > 0).astype(np.float32)
    return (rng.random((size, size)) > 0.5).astype(np.float32)


def image(kind: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random base colour, the pattern drawn lighter or darker around it, and sensor noise."""
    mask = pattern(kind, size, rng)[..., None]
    base = rng.uniform(60, 196, 3)
    amplitude = rng.uniform(50, 70) * rng.choice([-1.0, 1.0])
    pixels = base + (2 * mask - 1) * amplitude + rng.normal(0, 8, (size, size, 3))
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
