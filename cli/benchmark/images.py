"""Real-size test images made on the spot (seeded), so a benchmark needs no data set and no network."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image


def texture_jpeg(rng: np.random.Generator, width: int, height: int) -> bytes:
    """Smooth random colour fields plus grain: decodes and compresses like a photo, not like noise."""
    coarse = Image.fromarray(rng.integers(0, 256, (height // 40 + 2, width // 40 + 2, 3), dtype=np.uint8))
    smooth = np.asarray(coarse.resize((width, height), Image.BICUBIC), dtype=np.int16)
    grain = rng.normal(0, 8, smooth.shape).astype(np.int16)
    buf = io.BytesIO()
    Image.fromarray((smooth + grain).clip(0, 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def make_images(count: int, width: int = 640, height: int = 480, seed: int = 0) -> list[bytes]:
    rng = np.random.default_rng(seed)
    return [texture_jpeg(rng, width, height) for _ in range(count)]
