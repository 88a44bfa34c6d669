"""Accuracy summaries from softmax rows: top-1, top-5, per breed, and the pairs most often confused."""
from __future__ import annotations

from typing import Any

import numpy as np


def top_k_accuracy(probs: np.ndarray, y: np.ndarray, k: int) -> float:
    if not len(y):
        return float("nan")
    k = min(k, probs.shape[1])
    top = np.argsort(-probs, axis=1)[:, :k]
    return float(np.mean([label in row for label, row in zip(y, top)]))


def confusion(probs: np.ndarray, y: np.ndarray, num_classes: int) -> np.ndarray:
    """Rows: true class; columns: predicted class."""
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (np.asarray(y, np.int64), probs.argmax(1)), 1)
    return matrix


def summarize(probs: np.ndarray, y: np.ndarray, labels: list[str], most_confused: int = 10) -> dict[str, Any]:
    y = np.asarray(y, np.int64)
    matrix = confusion(probs, y, len(labels))
    totals = matrix.sum(1)
    per_breed = {labels[i]: {"accuracy": round(float(matrix[i, i] / totals[i]), 4), "images": int(totals[i])}
                 for i in range(len(labels)) if totals[i]}
    off = matrix.copy()
    np.fill_diagonal(off, 0)
    pairs = []
    for flat in np.argsort(-off, axis=None)[:most_confused]:
        true, pred = np.unravel_index(flat, off.shape)
        if off[true, pred] == 0:
            break
        pairs.append({"true": labels[true], "predicted": labels[pred], "count": int(off[true, pred]),
                      "share_of_true": round(float(off[true, pred] / totals[true]), 4)})
    return {
        "images": int(len(y)),
        "top1": round(top_k_accuracy(probs, y, 1), 4),
        "top5": round(top_k_accuracy(probs, y, 5), 4),
        "chance": round(1 / len(labels), 4),
        "per_breed": per_breed,
        "most_confused": pairs,
        "confusion": matrix.tolist(),
    }
