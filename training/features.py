"""Backbone features computed once per image and cached on disk, so later runs train the head in seconds.

The cache key is (backbone, weights, image SHA-256): renaming or moving photos keeps their features;
changing the weights file or the backbone never reuses stale ones.
"""
from __future__ import annotations

import hashlib
import os
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ml.backbone import RANDOM_WEIGHTS, Backbone
from shared.files import sha256_file
from shared.images import ImageError
from training.dataset import decode, read_bytes
from training.progress import bar


def weights_identity(weights: str) -> str:
    """What the features depend on: the file's content for a path, the name otherwise."""
    if weights.lower() in RANDOM_WEIGHTS:
        return "random-" + secrets.token_hex(8)  # each random build differs: never reuse its features
    path = Path(weights).expanduser()
    if path.is_file():
        return "sha256:" + sha256_file(path)
    return weights


# np.load parses each .npy header with ast.literal_eval; on CPython 3.11.7 two threads compiling at
# once can fail with "SystemError: AST constructor recursion depth mismatch" (fixed in later 3.11s).
# The cache is read from extract()'s thread pool, so reads take turns (they are tiny).
_NPY_HEADER_LOCK = threading.Lock()


class FeatureCache:
    """One .npy per image under root/<backbone>-<key>/, written atomically."""

    def __init__(self, root: Path, backbone: str, weights_id: str, input_size: int) -> None:
        key = hashlib.sha256(f"{backbone}|{weights_id}|{input_size}".encode()).hexdigest()[:16]
        self.folder = Path(root) / f"{backbone}-{key}"

    def _path(self, sha: str) -> Path:
        return self.folder / sha[:2] / f"{sha}.npy"

    def get(self, sha: str) -> np.ndarray | None:
        try:
            with _NPY_HEADER_LOCK:
                return np.load(self._path(sha))
        except (OSError, ValueError):
            return None

    def put(self, sha: str, vector: np.ndarray) -> None:
        path = self._path(sha)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with tmp.open("wb") as fh:
            np.save(fh, vector.astype(np.float32))
        os.replace(tmp, path)


@dataclass
class Features:
    """Features of the images that could be read; `kept` indexes them into the input list."""

    vectors: np.ndarray
    kept: list[int]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    hits: int = 0
    computed: int = 0


def extract(backbone: Backbone, paths: Sequence[Any], cache: FeatureCache | None,
            batch_size: int = 32, desc: str = "features", read: Callable[[Any], bytes] = read_bytes) -> Features:
    """Pooled features for each path: from the cache when there, else one backbone pass per batch.
    `read` gives an item's bytes (a file by default; `models learn` reads the image store)."""
    dim = backbone.feature_dim
    vectors: dict[int, np.ndarray] = {}
    out = Features(vectors=np.zeros((0, dim), np.float32), kept=[])
    with ThreadPoolExecutor(max_workers=4) as pool, bar(len(paths), desc) as progress:
        for start in range(0, len(paths), batch_size):
            chunk = list(range(start, min(start + batch_size, len(paths))))
            pending: list[tuple[int, str, np.ndarray]] = []
            for i, job in zip(chunk, pool.map(lambda i: _try_load(paths[i], backbone.input_size, cache, read), chunk)):
                sha, pixels, cached, error = job
                if error:
                    out.skipped.append((str(paths[i]), error))
                elif cached is not None:
                    vectors[i] = cached
                    out.hits += 1
                else:
                    pending.append((i, sha, pixels))
            if pending:
                batch = backbone.preprocess(np.stack([p for _, _, p in pending]))
                _, feats = backbone(batch)
                for (i, sha, _), vec in zip(pending, feats):
                    vectors[i] = vec
                    if cache is not None:
                        cache.put(sha, vec)
                out.computed += len(pending)
            progress.update(len(chunk))
    out.kept = sorted(vectors)
    out.vectors = np.stack([vectors[i] for i in out.kept]) if vectors else out.vectors
    return out


def _try_load(path: Any, size: int, cache: FeatureCache | None, read: Callable[[Any], bytes] = read_bytes):
    """(sha, pixels, cached vector, error): pixels are decoded only on a cache miss."""
    try:
        data = read(path)
        sha = hashlib.sha256(data).hexdigest()
        cached = cache.get(sha) if cache is not None else None
        if cached is not None:
            return sha, None, cached, None
        return sha, decode(data, size), None, None
    except ImageError as exc:
        return None, None, None, exc.message
