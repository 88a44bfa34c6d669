"""A model folder: head.keras (+ model.keras when fine-tuned), labels.json, metrics.json, card.json.

The serving worker reads head.keras on the frozen backbone's pooled features. A fine-tuned run also
holds model.keras, the whole fine-tuned network; its card says `"serving": "whole-model"`, and the
worker then runs model.keras for the breeds (worker/models/heads.py). Its head.keras stays the
stage-one head on the *frozen* backbone (the card's `accuracy.head`), for tools that know only heads.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from worker.models.heads import (  # noqa: F401  (the folder format is the serving side's; re-exported)
    CARD_FILE,
    HEAD_FILE,
    LABELS_FILE,
    ModelFolderError,
    read_card,
    read_json,
    read_labels,
)
from worker.models.heads import WHOLE_MODEL_FILE as MODEL_FILE

METRICS_FILE = "metrics.json"
REQUIRED = (HEAD_FILE, LABELS_FILE)


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")


def check_folder(folder: Path, feature_dim: int | None = None, input_size: int | None = None) -> dict[str, Any]:
    """Load the head (and whole model) and check labels against outputs, features against the backbone."""
    import keras

    folder = Path(folder)
    missing = [name for name in REQUIRED if not (folder / name).is_file()]
    if missing:
        raise ModelFolderError(f"{folder}: missing {', '.join(missing)} (a model folder holds {', '.join(REQUIRED)})")
    labels = read_labels(folder)
    try:
        head = keras.models.load_model(folder / HEAD_FILE, compile=False)
    except Exception as exc:
        raise ModelFolderError(f"{folder / HEAD_FILE} is not a loadable Keras model ({type(exc).__name__}: {exc})") from None
    outputs, inputs = int(head.output.shape[-1]), int(head.input.shape[-1])
    if outputs != len(labels):
        raise ModelFolderError(f"{folder}: the head has {outputs} outputs but labels.json names {len(labels)} labels")
    if feature_dim is not None and inputs != feature_dim:
        raise ModelFolderError(f"{folder}: the head takes {inputs} features but the backbone gives {feature_dim}; "
                               "it was trained on another backbone")
    whole = folder / MODEL_FILE
    if whole.is_file():
        model = keras.models.load_model(whole, compile=False)
        if int(model.output.shape[-1]) != len(labels):
            raise ModelFolderError(f"{whole}: {model.output.shape[-1]} outputs but {len(labels)} labels")
        if input_size is not None and int(model.input.shape[1]) != input_size:
            raise ModelFolderError(f"{whole}: takes {model.input.shape[1]}px images, the backbone {input_size}px")
    return {"labels": labels, "feature_dim": inputs, "num_classes": outputs}
