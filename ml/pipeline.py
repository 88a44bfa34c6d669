"""The classification pipeline as pure functions: arrays in, dataclasses out; no session, no Celery.

to_uint8 (per image: resize) -> forward (per batch: ONE backbone pass + head) -> answer (per image:
the dog rule, faces only when it says no dog, then dog / human / neither, top-5, sentence). The
worker runs forward on its inference thread and answer on each task's thread (worker/runtime.py);
`classify` chains the same steps for callers that hold the models themselves.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ml.backbone import Backbone
from ml.faces import FaceDetector
from ml.heads import FineTunedModel, Head
from ml.imagenet import DOG_FIRST, DOG_LAST, imagenet_labels, top_k
from ml.preprocess import to_uint8


@dataclass
class Models:
    backbone: Backbone
    head: Head
    faces: FaceDetector
    dog_rule: str = "mass"

    def describe(self) -> dict[str, Any]:
        return {**self.backbone.describe(), "head": self.head.name, "model_version": self.head.version,
                "faces": self.faces.name}


@dataclass
class Outputs:
    """One image's share of a batch's forward pass."""

    imagenet: np.ndarray
    breeds: np.ndarray


@dataclass
class Result:
    kind: str  # dog | human | neither
    sentence: str
    dog_score: float
    breeds: list[dict[str, Any]]
    faces: list[dict[str, int]]
    imagenet_top: list[dict[str, Any]]
    model: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 1  # how many images shared this image's forward pass
    stages_ms: dict[str, float] = field(default_factory=dict)  # where this job's time went (decode, model, ...)
    uncertain: bool = False  # a dog whose breed the head is not sure of (ml/uncertainty.py); False otherwise

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def forward(inputs: np.ndarray, models: Models, count: int | None = None) -> list[Outputs]:
    """One backbone pass for the whole uint8 batch (cast and preprocessing inside its graph); the breed
    head runs on the same pooled features. `count`: only the first rows are images, the rest padding."""
    count = len(inputs) if count is None else count
    probs, features = models.backbone.run(inputs)
    probs, features = probs[:count].astype(np.float64), features[:count]
    # Only a fine-tuned whole model looks at the pixels again, preprocessed as it was trained on them.
    images = (models.backbone.preprocess(inputs[:count].astype(np.float32))
              if isinstance(models.head, FineTunedModel) else inputs[:count])
    breeds = models.head.predict(probs, features, images)
    return [Outputs(imagenet=probs[i], breeds=breeds[i]) for i in range(len(probs))]


# The least share of the probability the dog classes need under the 'mass' rule. ImageNet has no
# "person" class, so on a face every class is small and the 118 dog classes together can outweigh
# the largest other one; EfficientNet-Lite2's flatter probabilities gave two of the team's 54 human
# photos a dog mass of 0.07 and 0.27 (MobileNetV2: at most 0.06), while its real dogs start at 0.32
# (one at 0.13 loses to "white wolf" anyway).
DOG_MIN_MASS = 0.3


def is_dog(probs: np.ndarray, rule: str) -> tuple[bool, float]:
    """'mass': the 118 dog classes, taken as one class, outweigh every other class (robust when
    the mass is spread over similar breeds) and hold at least DOG_MIN_MASS of it; 'top1': the seed
    work's rule, the single best class."""
    score = float(probs[DOG_FIRST:DOG_LAST + 1].sum())
    if rule == "top1":
        return DOG_FIRST <= int(np.argmax(probs)) <= DOG_LAST, score
    others = np.concatenate([probs[:DOG_FIRST], probs[DOG_LAST + 1:]])
    return score > float(others.max()) and score >= DOG_MIN_MASS, score


def _a(noun: str) -> str:
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def _sentence(kind: str, breeds: list[dict[str, Any]], imagenet_top: list[dict[str, Any]], faces: int,
              uncertain: bool = False) -> str:
    if kind == "neither":
        return f"No dog or human face found in this image (it looks more like {_a(imagenet_top[0]['label'])})."
    best = breeds[0]
    if kind == "dog" and uncertain:
        closest = " or ".join(_a(b["breed"]) for b in breeds[:2])
        return f"This is a dog, but I'm not sure of this breed; it looks closest to {closest}."
    if kind == "dog":
        return f"This is a dog, and it looks most like {_a(best['breed'])} ({best['probability'] * 100:.0f}% sure)."
    if faces == 1:
        return f"Hello, human! No dog here, but if you were a dog you would be {_a(best['breed'])}."
    return f"We found {faces} human faces and no dog. As a dog, this picture would be {_a(best['breed'])}."


def answer(image: np.ndarray, outputs: Outputs, models: Models,
           full_size: tuple[int, int] | None = None) -> Result:
    """The one path from a batch's outputs to a job's answer. Faces are looked for only where they can
    change it (the dog rule said no dog); `full_size` maps their boxes to the original's pixels."""
    dog, score = is_dog(outputs.imagenet, models.dog_rule)
    faces: list[dict[str, int]] = []
    stages: dict[str, float] = {}
    if not dog:
        start = time.perf_counter()
        faces = models.faces.detect(image, full_size)
        stages["faces"] = round((time.perf_counter() - start) * 1000, 2)
    kind = "dog" if dog else ("human" if faces else "neither")
    labels = imagenet_labels()
    imagenet_top = [{"label": labels[i], "probability": round(float(outputs.imagenet[i]), 6)}
                    for i in np.argsort(-outputs.imagenet)[:3]]
    breeds = top_k(outputs.breeds, models.head.labels, 5)
    uncertain = kind == "dog" and models.head.sure.uncertain(outputs.breeds, models.head.labels)
    return Result(
        kind=kind,
        sentence=_sentence(kind, breeds, imagenet_top, len(faces), uncertain),
        dog_score=round(score, 6),
        breeds=breeds if kind != "neither" else [],
        faces=faces,
        imagenet_top=imagenet_top,
        model=models.describe(),
        stages_ms=stages,
        uncertain=uncertain,
    )


def classify(images: list[np.ndarray], models: Models) -> list[Result]:
    """One forward pass for all the images, then each one's answer: the worker's steps in one call."""
    outputs = forward(np.stack([to_uint8(image, models.backbone.input_size) for image in images]), models)
    results = [answer(image, out, models) for image, out in zip(images, outputs)]
    for result in results:
        result.batch_size = len(images)
    return results
