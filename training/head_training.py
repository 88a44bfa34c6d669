"""The breed head on pooled features: dropout + dense softmax, optionally started from ImageNet's own rows."""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from ml.imagenet import DOG_FIRST, DOG_LAST, readable, synonyms
from training.progress import EpochLog

HEAD_LAYER, SCALE_LAYER = "breeds", "standardise"


def _norm(name: str) -> str:
    return " ".join(name.lower().replace("_", " ").replace("-", " ").split())


@lru_cache(maxsize=1)
def _imagenet_synonyms() -> dict[str, int]:
    """Every synonym of every ImageNet class -> its index; the dog classes win a clash."""
    names = synonyms()
    order = list(range(DOG_FIRST, DOG_LAST + 1)) + [i for i in range(len(names)) if not DOG_FIRST <= i <= DOG_LAST]
    found: dict[str, int] = {}
    for i in order:
        for synonym in names[i]:
            found.setdefault(_norm(synonym), i)
    return found


def imagenet_matches(classes: list[str]) -> dict[int, int]:
    """Class index -> ImageNet class index, for the classes whose readable name is an ImageNet class."""
    synonyms = _imagenet_synonyms()
    return {i: synonyms[_norm(readable(c))] for i, c in enumerate(classes) if _norm(readable(c)) in synonyms}


def build_head(feature_dim: int, num_classes: int, dropout: float = 0.3, seed: int = 0,
               scale: tuple[np.ndarray, np.ndarray] | None = None):
    """Pooled features -> fixed standardisation -> dropout -> dense softmax.

    The standardisation (the training features' mean and variance, frozen) is an affine change of
    the dense layer's coordinates: it changes no answer a dense layer could give, but lets one
    learning rate suit every backbone, whose pooled features differ in scale by orders of magnitude.
    """
    import keras

    inputs = keras.Input((feature_dim,), name="features")
    mean, variance = scale if scale is not None else (np.zeros(feature_dim), np.ones(feature_dim))
    x = keras.layers.Normalization(mean=mean, variance=np.maximum(variance, 1e-12), name=SCALE_LAYER)(inputs)
    x = keras.layers.Dropout(dropout, seed=seed)(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name=HEAD_LAYER)(x)
    return keras.Model(inputs, outputs, name="breed_head")


def apply_imagenet_prior(head, imagenet_classifier, matches: dict[int, int]) -> int:
    """Start each matching class's row from the ImageNet classifier's own: same logits before training."""
    if not matches:
        return 0
    kernel, bias = imagenet_classifier.get_layer("predictions").get_weights()
    dense = head.get_layer(HEAD_LAYER)
    w, b = dense.get_weights()
    if w.shape[0] != kernel.shape[0]:
        raise ValueError(f"head takes {w.shape[0]} features but the ImageNet top takes {kernel.shape[0]}")
    norm = head.get_layer(SCALE_LAYER)
    mean = np.asarray(norm.mean).reshape(-1)
    std = np.sqrt(np.asarray(norm.variance).reshape(-1))
    for mine, theirs in matches.items():  # undo the standardisation: W'z + b' == Kx + c
        w[:, mine] = kernel[:, theirs] * std
        b[mine] = bias[theirs] + kernel[:, theirs] @ mean
    dense.set_weights([w, b])
    return len(matches)


def train_head(head, train: tuple[np.ndarray, np.ndarray], valid: tuple[np.ndarray, np.ndarray],
               epochs: int = 60, patience: int = 6, lr: float = 1e-3, batch_size: int = 64,
               stage: str = "head", quiet: bool = False) -> dict[str, list[float]]:
    """Adam on cached features; early stopping on validation loss restores the best epoch's weights."""
    import keras

    log = EpochLog(stage, epochs, quiet)
    head.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy",
                 metrics=["accuracy"])
    history = head.fit(
        train[0], train[1], validation_data=valid if len(valid[0]) else None,
        epochs=epochs, batch_size=batch_size, verbose=0, shuffle=True,
        callbacks=[
            keras.callbacks.EarlyStopping(monitor="val_loss" if len(valid[0]) else "loss", patience=patience,
                                          restore_best_weights=True),
            keras.callbacks.LambdaCallback(on_epoch_end=lambda i, logs: log.epoch(i, logs or {})),
        ],
    )
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}


def predict(model: Any, inputs: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Softmax rows without Keras's per-call progress and retracing overhead."""
    if len(inputs) == 0:
        return np.zeros((0, int(model.output.shape[-1])), np.float32)
    return np.concatenate([np.asarray(model(inputs[i:i + batch_size], training=False))
                           for i in range(0, len(inputs), batch_size)])
