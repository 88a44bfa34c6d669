"""`dogbreed experiment data-size`: feature extraction against fine-tuning as the training set shrinks."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ml import model_folder
from training.dataset import fraction
from training.head_training import predict
from training.metrics import top_k_accuracy
from training.plots import data_size_png
from training.train import TrainConfig, fit_head, prepare, run_fine_tune, say

DEFAULT_FRACTIONS = (1.0, 0.5, 0.2, 0.1)


def data_size(config: TrainConfig, fractions: tuple[float, ...] = DEFAULT_FRACTIONS,
              strategies: tuple[str, ...] = ("feature-extraction", "fine-tune"),
              out_dir: Path | None = None) -> list[dict[str, Any]]:
    """One row per (fraction, strategy); the same seeded stratified subset serves both strategies."""
    import keras

    prep = prepare(config)  # features once; every fraction's head trains from the cache
    x_test, y_test = prep.xy("test")
    rows: list[dict[str, Any]] = []
    for share in fractions:
        subset = fraction(prep.splits["train"], share, config.seed)
        started = time.monotonic()
        head, history = fit_head(prep, config.prior == "on", train=subset, quiet=True)
        fe_acc = top_k_accuracy(predict(head, x_test), y_test, 1)
        row = {"fraction": share, "train_images": len(subset)}
        rows.append({**row, "strategy": "feature-extraction", "test_top1": round(fe_acc, 4),
                     "epochs": len(history["loss"]), "seconds": round(time.monotonic() - started, 1)})
        say(config, f"{share:>5.0%} ({len(subset)} images) feature extraction: test top-1 {fe_acc:.3f}")
        if "fine-tune" in strategies:
            started = time.monotonic()
            tuned = keras.models.clone_model(head)
            tuned.set_weights(head.get_weights())
            result = run_fine_tune(prep, tuned, subset)
            rows.append({**row, "strategy": "fine-tune", "test_top1": result["test"]["top1"],
                         "epochs": len(result["history"]["loss"]), "seconds": round(time.monotonic() - started, 1)})
            say(config, f"{share:>5.0%} ({len(subset)} images) fine-tuning:        test top-1 {result['test']['top1']:.3f}")
    out = Path(out_dir or Path("var/experiments") / f"data-size-{prep.dataset.name}-{config.backbone}")
    out.mkdir(parents=True, exist_ok=True)
    model_folder.write_json(out / "data_size.json", {"dataset": prep.dataset.name, "backbone": config.backbone,
                                                  "weights": config.weights, "test_images": int(len(y_test)),
                                                  "rows": rows})
    data_size_png(out / "data_size.png", rows, f"{prep.dataset.name}: {config.backbone} ({len(y_test)} test images)")
    say(config, table(rows))
    say(config, f"wrote {out / 'data_size.json'} and {out / 'data_size.png'}")
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """Fractions down, strategies across, test top-1 in the cells."""
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    shares = list(dict.fromkeys((r["fraction"], r["train_images"]) for r in rows))
    lines = [f"{'train share':>12} {'images':>7} " + " ".join(f"{s:>19}" for s in strategies)]
    for share, images in shares:
        cells = [next((f"{r['test_top1']:.3f}" for r in rows if r["fraction"] == share and r["strategy"] == s), "-")
                 for s in strategies]
        lines.append(f"{share:>12.0%} {images:>7} " + " ".join(f"{c:>19}" for c in cells))
    return "\n".join(lines)

