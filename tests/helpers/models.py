"""A small servable model folder, written directly (no training): a softmax head on tiny's features."""
from __future__ import annotations

import json
from pathlib import Path

LABELS = ["Zebra", "Honeycomb", "Maze"]


def write_head_folder(folder: Path, backbone: str = "tiny", weights: str = "random") -> Path:
    import keras

    from ml.backbone import load_backbone

    feature_dim = load_backbone(backbone, "random").feature_dim
    features = keras.Input((feature_dim,))
    head = keras.Model(features, keras.layers.Dense(len(LABELS), activation="softmax")(features))
    folder.mkdir(parents=True, exist_ok=True)
    head.save(folder / "head.keras")
    (folder / "labels.json").write_text(json.dumps(LABELS))
    (folder / "card.json").write_text(json.dumps({"backbone": backbone, "weights": weights,
                                                  "strategy": "feature-extraction"}))
    return folder
