"""The 1000 ImageNet classes the backbones are trained on, and the 118 of them that are dogs."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from shared.breed_names import readable as readable  # a class folder's readable name (re-exported: ml's old home of it)

DOG_FIRST, DOG_LAST = 151, 268  # ImageNet class indices of the 118 dog breeds, inclusive
LABELS_PATH = Path(__file__).with_name("imagenet_labels.txt")


@lru_cache(maxsize=1)
def synonyms() -> list[list[str]]:
    """Every class's synonyms, in class order (line i of the labels file is class i)."""
    lines = LABELS_PATH.read_text(encoding="utf-8").splitlines()
    return [[name.strip() for name in line.split(",")] for line in lines]


def imagenet_labels() -> list[str]:
    """Readable names of the 1000 classes: the first synonym of each."""
    return [names[0] for names in synonyms()]


def top_k(probs_row: np.ndarray, labels: list[str], k: int = 5) -> list[dict[str, Any]]:
    order = np.argsort(-probs_row)[:k]
    return [{"breed": labels[i], "probability": round(float(probs_row[i]), 6)} for i in order]
