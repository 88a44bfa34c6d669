"""PNG figures: learning curves with the confusions, and accuracy against training-set size."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def report_png(path: Path, summary: dict[str, Any], metrics: dict[str, Any] | None, title: str,
               labels: list[str] | None = None) -> Path:
    """Left: loss and accuracy per epoch (head, then fine-tuning); middle: confusion matrix; right: worst pairs."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(18, 5.5))
    curves = axes[0]
    stages = [("head", (metrics or {}).get("head", {}).get("history")),
              ("fine-tune", (metrics or {}).get("fine_tune", {}).get("history"))]
    offset = 0
    for stage, history in stages:
        if not history:
            continue
        epochs = np.arange(offset + 1, offset + 1 + len(history["loss"]))
        for key, style in (("loss", "-"), ("val_loss", "--"), ("accuracy", "-"), ("val_accuracy", "--")):
            if history.get(key):
                curves.plot(epochs, history[key], style, label=f"{stage} {key}")
        offset += len(history["loss"])
    curves.set(title="learning curves", xlabel="epoch")
    if offset:
        curves.legend(fontsize=7)
    else:
        curves.text(0.5, 0.5, "no training history (metrics.json)", ha="center", transform=curves.transAxes)
    matrix = np.asarray(summary["confusion"], float)
    rows = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    image = axes[1].imshow(rows, cmap="viridis", vmin=0, vmax=1)
    axes[1].set(title=f"confusions (rows: true), top-1 {summary['top1']:.3f}", xlabel="predicted", ylabel="true")
    fig.colorbar(image, ax=axes[1], fraction=0.046)
    if labels and len(labels) <= 30:  # beyond that the names overlap; the pairs panel names the worst
        ticks = range(len(labels))
        axes[1].set_xticks(ticks, labels, rotation=90, fontsize=7)
        axes[1].set_yticks(ticks, labels, fontsize=7)
    pairs = summary["most_confused"][:10][::-1]
    axes[2].barh([f"{p['true']} -> {p['predicted']}" for p in pairs], [p["count"] for p in pairs])
    axes[2].set(title="most confused pairs", xlabel="images")
    axes[2].tick_params(axis="y", labelsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def data_size_png(path: Path, rows: list[dict[str, Any]], title: str) -> Path:
    """Test accuracy of each strategy against the share of the training set used."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for strategy in dict.fromkeys(r["strategy"] for r in rows):
        points = sorted((r["fraction"], r["test_top1"]) for r in rows if r["strategy"] == strategy)
        ax.plot([p[0] * 100 for p in points], [p[1] for p in points], "o-", label=strategy)
    ax.set(title=title, xlabel="training images used (%)", ylabel="test top-1 accuracy", ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
