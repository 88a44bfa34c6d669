"""Breed heads: the ImageNet dog classes out of the box, or a trained head on the pooled features."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

DOG_FIRST, DOG_LAST = 151, 268  # ImageNet class indices of the 118 dog breeds, inclusive
HEAD_FILE, LABELS_FILE, CARD_FILE, WHOLE_MODEL_FILE = "head.keras", "labels.json", "card.json", "model.keras"


class ModelFolderError(ValueError):
    """The folder is not a model we can serve; the message says what is missing or inconsistent."""


def read_json(path: Path, default: Any = None) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else default


def read_labels(folder: Path) -> list[str]:
    labels = read_json(folder / LABELS_FILE)
    if isinstance(labels, dict):
        labels = labels.get("labels")
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels) or not labels:
        raise ModelFolderError(f"{folder / LABELS_FILE}: expected a JSON list of label strings or {{\"labels\": [...]}}")
    return labels


def read_card(folder: Path) -> dict[str, Any]:
    return read_json(folder / CARD_FILE, {}) or {}


@lru_cache(maxsize=1)
def imagenet_labels() -> list[str]:
    """Readable names of the 1000 ImageNet classes: the first synonym of each line."""
    text = (Path(__file__).parent / "imagenet_labels.txt").read_text(encoding="utf-8")
    return [line.split(",")[0].strip() for line in text.splitlines()]


def readable(label: str) -> str:
    """'001.Affenpinscher', 'n02085620-Chihuahua', 'Labrador_retriever' -> 'Affenpinscher', 'Chihuahua', ..."""
    name = label.strip()
    if "." in name and name.split(".", 1)[0].isdigit():
        name = name.split(".", 1)[1]
    if "-" in name and name.split("-", 1)[0][:1] == "n" and name.split("-", 1)[0][1:].isdigit():
        name = name.split("-", 1)[1]
    name = name.replace("_", " ")
    return name[:1].upper() + name[1:]


@dataclass
class ImageNetDogHead:
    """118 breeds straight from the ImageNet classifier: answers before any breed head is trained."""

    name: str = "imagenet-dogs"
    version: str | None = None
    labels: list[str] = field(default_factory=lambda: [readable(n) for n in imagenet_labels()[DOG_FIRST:DOG_LAST + 1]])

    def predict(self, probs: np.ndarray, features: np.ndarray, images: np.ndarray) -> np.ndarray:
        dogs = probs[:, DOG_FIRST:DOG_LAST + 1].astype(np.float64)
        return dogs / np.maximum(dogs.sum(axis=1, keepdims=True), 1e-12)


@dataclass
class TrainedHead:
    """A dense softmax trained on this backbone's pooled features (see `dogbreed train`)."""

    name: str
    version: str
    labels: list[str]
    model: Any

    def predict(self, probs: np.ndarray, features: np.ndarray, images: np.ndarray) -> np.ndarray:
        return np.asarray(self.model(features, training=False), dtype=np.float64)


class FineTunedModel(TrainedHead):
    """A fine-tuned whole network (image -> breeds): its tuned backbone is not the frozen one, so it
    costs a second forward pass on the batch; the frozen backbone still answers dog or not."""

    def predict(self, probs: np.ndarray, features: np.ndarray, images: np.ndarray) -> np.ndarray:
        return np.asarray(self.model(images, training=False), dtype=np.float64)


def load_trained_head(folder: Path, version: str, feature_dim: int) -> TrainedHead:
    """The head on the frozen features, or, when the card says so, the whole fine-tuned model."""
    import keras

    labels = read_labels(folder)
    if read_card(folder).get("serving") == "whole-model" and (folder / WHOLE_MODEL_FILE).is_file():
        whole = keras.models.load_model(folder / WHOLE_MODEL_FILE, compile=False)
        if int(whole.output.shape[-1]) != len(labels):
            raise ModelFolderError(f"{folder}: model has {whole.output.shape[-1]} outputs but {len(labels)} labels")
        return FineTunedModel(name=f"fine-tuned:{version}", version=version, labels=[readable(x) for x in labels],
                              model=whole)
    model = keras.models.load_model(folder / HEAD_FILE, compile=False)
    if int(model.input.shape[-1]) != feature_dim:
        raise ModelFolderError(f"{folder}: head takes {model.input.shape[-1]} features, the backbone gives {feature_dim}")
    if int(model.output.shape[-1]) != len(labels):
        raise ModelFolderError(f"{folder}: head has {model.output.shape[-1]} outputs but {len(labels)} labels")
    return TrainedHead(name=f"trained:{version}", version=version, labels=[readable(x) for x in labels], model=model)


def top_k(probs_row: np.ndarray, labels: list[str], k: int = 5) -> list[dict[str, Any]]:
    order = np.argsort(-probs_row)[:k]
    return [{"breed": labels[i], "probability": round(float(probs_row[i]), 6)} for i in order]
