"""Breed heads: the ImageNet dog classes out of the box, or a trained head on the pooled features."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ml import model_folder
from ml.imagenet import DOG_FIRST, DOG_LAST, readable
from ml.uncertainty import IMAGENET_RULE, SureRule
from shared.breed_names import IMAGENET_HEAD, common_name


class Head(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str | None: ...  # read-only, so a TrainedHead's `str` satisfies it
    @property
    def labels(self) -> list[str]: ...
    @property
    def sure(self) -> SureRule: ...  # when its answer is "not sure" (ml/uncertainty.py)

    def predict(self, probs: np.ndarray, features: np.ndarray, images: np.ndarray) -> np.ndarray: ...


@dataclass
class ImageNetDogHead:
    """118 breeds straight from the ImageNet classifier, under the names owners use: answers before
    any breed head is trained (the raw ImageNet labels stay in a result's imagenet_top)."""

    name: str = IMAGENET_HEAD
    version: str | None = None
    labels: list[str] = field(default_factory=lambda: [common_name(i) for i in range(DOG_FIRST, DOG_LAST + 1)])
    sure: SureRule = IMAGENET_RULE

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
    sure: SureRule = IMAGENET_RULE  # a learned head's card names its own (card["uncertain"])

    def predict(self, probs: np.ndarray, features: np.ndarray, images: np.ndarray) -> np.ndarray:
        return np.asarray(self.model(features, training=False), dtype=np.float64)


class FineTunedModel(TrainedHead):
    """A fine-tuned whole network (image -> breeds): its tuned backbone is not the frozen one, so it
    costs a second forward pass on the batch; the frozen backbone still answers dog or not."""

    def predict(self, probs: np.ndarray, features: np.ndarray, images: np.ndarray) -> np.ndarray:
        return np.asarray(self.model(images, training=False), dtype=np.float64)


def load_trained_head(folder: Path, version: str, feature_dim: int) -> TrainedHead:
    """The head on the frozen features, or, when the card says so, the whole fine-tuned model."""
    labels = model_folder.read_labels(folder)
    names = [readable(x) for x in labels]
    sure = SureRule.from_card(model_folder.read_card(folder).get("uncertain"))
    if model_folder.serves_whole_model(folder):
        whole = model_folder.load_keras(folder / model_folder.MODEL_FILE)
        model_folder.check_whole_model(folder, whole, labels, None)
        return FineTunedModel(name=f"fine-tuned:{version}", version=version, labels=names, model=whole, sure=sure)
    head = model_folder.load_keras(folder / model_folder.HEAD_FILE)
    model_folder.check_head(folder, head, labels, feature_dim)
    return TrainedHead(name=f"trained:{version}", version=version, labels=names, model=head, sure=sure)
