"""Images to time: real-size ones made on the spot (seeded, no data set, no network), or the user's own."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from cli.client import image_files
from shared.errors import FixedCodeError
from shared.formats import IMAGE_SUFFIXES


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


class NoImages(FixedCodeError, ValueError):
    """--images names no folder with photos; the message says what was looked for."""

    code = "no_images"


def load_images(folder: str, count: int | None = None) -> list[bytes]:
    """The folder's photos, repeated in order to make `count` when given."""
    found = image_files(Path(folder)) if Path(folder).is_dir() else []
    if not found:
        raise NoImages(f"--images {folder}: no {', '.join(sorted(IMAGE_SUFFIXES))} files there; "
                       "point it at a folder of photos")
    data = [p.read_bytes() for p in found]
    return [data[i % len(data)] for i in range(count or len(data))]
