"""A model folder: the one place its file names, its card, its labels and its checks are spelled.

`dogbreed train` writes one; `dogbreed models publish|import` checks it and copies it into the model
store (ml/registry.py); the worker reads the active one (ml/heads.py). It holds head.keras (a dense
softmax on the frozen backbone's pooled features), labels.json, metrics.json and card.json. A
fine-tuned run also holds model.keras, the whole tuned network: its card says
`"serving": "whole-model"` and the worker runs model.keras for the breeds; its head.keras stays the
stage-one head on the frozen backbone, for tools that know only heads.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shared.errors import FixedCodeError

HEAD_FILE, MODEL_FILE = "head.keras", "model.keras"
LABELS_FILE, METRICS_FILE, CARD_FILE = "labels.json", "metrics.json", "card.json"
REPORT_FILES = ("report.json", "report.png")
FILES = (HEAD_FILE, MODEL_FILE, LABELS_FILE, METRICS_FILE, CARD_FILE, *REPORT_FILES)
REQUIRED = (HEAD_FILE, LABELS_FILE)
WHOLE_MODEL = "whole-model"  # the card's "serving" value for a fine-tuned model.keras


class ModelFolderError(FixedCodeError, ValueError):
    """The folder is not a model we can serve; the message says what is missing or inconsistent."""

    code = "bad_model_folder"


def read_json(path: Path, default: Any = None) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else default


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")


def read_labels(folder: Path) -> list[str]:
    labels = read_json(folder / LABELS_FILE)
    if isinstance(labels, dict):
        labels = labels.get("labels")
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels) or not labels:
        raise ModelFolderError(f"{folder / LABELS_FILE}: expected a JSON list of label strings or {{\"labels\": [...]}}")
    return labels


def read_card(folder: Path) -> dict[str, Any]:
    return read_json(folder / CARD_FILE, {}) or {}


def serves_whole_model(folder: Path) -> bool:
    return read_card(folder).get("serving") == WHOLE_MODEL and (folder / MODEL_FILE).is_file()


def load_keras(path: Path):
    import keras

    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:
        raise ModelFolderError(f"{path} is not a loadable Keras model ({type(exc).__name__}: {exc})") from None


def check_head(folder: Path, head, labels: list[str], feature_dim: int | None) -> None:
    outputs, inputs = int(head.output.shape[-1]), int(head.input.shape[-1])
    if outputs != len(labels):
        raise ModelFolderError(f"{folder}: the head has {outputs} outputs but labels.json names {len(labels)} labels")
    if feature_dim is not None and inputs != feature_dim:
        raise ModelFolderError(f"{folder}: the head takes {inputs} features but the backbone gives {feature_dim}; "
                               "it was trained on another backbone")


def check_whole_model(folder: Path, model, labels: list[str], input_size: int | None) -> None:
    if int(model.output.shape[-1]) != len(labels):
        raise ModelFolderError(f"{folder / MODEL_FILE}: {model.output.shape[-1]} outputs but {len(labels)} labels")
    if input_size is not None and int(model.input.shape[1]) != input_size:
        raise ModelFolderError(f"{folder / MODEL_FILE}: takes {model.input.shape[1]}px images, the backbone {input_size}px")


def check_folder(folder: Path, feature_dim: int | None = None, input_size: int | None = None) -> dict[str, Any]:
    """Load the head (and whole model) and check labels against outputs, features against the backbone."""
    folder = Path(folder)
    missing = [name for name in REQUIRED if not (folder / name).is_file()]
    if missing:
        raise ModelFolderError(f"{folder}: missing {', '.join(missing)} (a model folder holds {', '.join(REQUIRED)})")
    labels = read_labels(folder)
    head = load_keras(folder / HEAD_FILE)
    check_head(folder, head, labels, feature_dim)
    if (folder / MODEL_FILE).is_file():
        check_whole_model(folder, load_keras(folder / MODEL_FILE), labels, input_size)
    return {"labels": labels, "feature_dim": int(head.input.shape[-1]), "num_classes": len(labels)}
