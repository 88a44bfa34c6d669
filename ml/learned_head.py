"""A breed head that keeps the backbone's 118 ImageNet dog breeds and adds breeds learned from labels.

Pure model code (`dogbreed models learn` fits it, training/learn.py): the head is one dense softmax
on the pooled features, saved as head.keras like any trained head, so the worker loads it as it loads
the others (ml/heads.py). Its first 118 columns start as the ImageNet classifier's own rows for
classes 151..268: before any fitting the head answers exactly as the ImageNet dog classes do. Each new
breed's column starts from the mean of its labeled photos' features, which works from one photo.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ml.imagenet import DOG_FIRST, DOG_LAST

HEAD_LAYER = "breeds"
# How far (in logits) a photo at a new breed's mean stands above one at the labeled photos' overall
# mean. Measured on the team's photos: 4 names the most new-breed dogs without taking the 118's
# (8 and 12 left more of them to the ImageNet rows: test top-1 0.61 against 0.645).
NEW_BREED_SPREAD = 4.0


def imagenet_dog_rows(classifier: Any) -> tuple[np.ndarray, np.ndarray]:
    """The ImageNet classifier's final dense weights for the 118 dog classes: (D, 118) and (118,)."""
    kernel, bias = classifier.get_layer("predictions").get_weights()
    return (np.asarray(kernel[:, DOG_FIRST:DOG_LAST + 1], np.float64),
            np.asarray(bias[DOG_FIRST:DOG_LAST + 1], np.float64))


def imagenet_probs(classifier: Any, features: np.ndarray) -> np.ndarray:
    """The 1000 ImageNet probabilities from pooled features (the classifier's last layer, no image pass)."""
    kernel, bias = classifier.get_layer("predictions").get_weights()
    return softmax(np.asarray(features, np.float64) @ kernel + bias)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def start_rows(dog_kernel: np.ndarray, dog_bias: np.ndarray, means: np.ndarray, reference: np.ndarray,
               target_logit: float, spread: float = NEW_BREED_SPREAD) -> tuple[np.ndarray, np.ndarray]:
    """The 118 ImageNet rows, then one row per new breed from its features' mean.

    A new breed's row points from `reference` (the mean of every labeled photo) to its own mean,
    scaled so that a photo at its mean scores `target_logit` (what the ImageNet rows give a photo of
    their own breed) and one at the reference `spread` less: a linear stand-in for "nearest mean"
    that sits on the ImageNet rows' scale.
    """
    columns, biases = [dog_kernel], [dog_bias]
    for mean in np.asarray(means, np.float64).reshape(-1, dog_kernel.shape[0]):
        direction = mean - reference
        norm2 = float(direction @ direction)
        w = spread * direction / norm2 if norm2 > 1e-12 else np.zeros_like(direction)
        columns.append(w[:, None])
        biases.append(np.array([target_logit - float(w @ mean)]))
    return np.hstack(columns), np.concatenate(biases)


def head_model(kernel: np.ndarray, bias: np.ndarray) -> Any:
    """Pooled features -> dense softmax with these weights: a head.keras any worker loads."""
    import keras

    inputs = keras.Input((kernel.shape[0],), name="features")
    outputs = keras.layers.Dense(kernel.shape[1], activation="softmax", name=HEAD_LAYER)(inputs)
    model = keras.Model(inputs, outputs, name="learned_breed_head")
    model.get_layer(HEAD_LAYER).set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
    return model
