"""Fine-tuning: ULMFiT's schedules, only the unfrozen layers move, batch norm stays in inference mode."""
from __future__ import annotations

import json

import numpy as np
import pytest

from training.schedules import FineTuneConfig, group_rates, slanted_triangular, unfrozen_groups


def test_slanted_triangular_rises_fast_then_decays_slowly():
    rates = [slanted_triangular(t, 100, 0.01, cut_frac=0.1, ratio=32) for t in range(101)]
    assert rates[0] == pytest.approx(0.01 / 32)
    assert max(rates) == pytest.approx(0.01) and int(np.argmax(rates)) == 10
    assert all(a < b for a, b in zip(rates[:10], rates[1:11]))
    assert all(a > b for a, b in zip(rates[10:99], rates[11:100]))
    assert rates[100] == pytest.approx(0.01 / 32)


def test_discriminative_rates_and_gradual_unfreezing_can_each_be_turned_off():
    on = FineTuneConfig(unfreeze=2)
    assert group_rates(1.0, 3, on) == pytest.approx([1.0, 1 / 2.6, 1 / 2.6 ** 2])
    assert group_rates(1.0, 3, FineTuneConfig(discriminative=False)) == [1.0, 1.0, 1.0]
    assert [unfrozen_groups(e, on) for e in range(4)] == [0, 1, 2, 2]
    assert [unfrozen_groups(e, FineTuneConfig(unfreeze=2, gradual=False)) for e in range(3)] == [2, 2, 2]


def _weights(model):
    return {layer.name: [w.copy() for w in layer.get_weights()] for layer in model.layers if layer.weights}


def _moved(before, after) -> set[str]:
    return {name for name in before if any(not np.array_equal(a, b) for a, b in zip(before[name], after[name]))}


def test_fine_tuning_moves_only_the_head_and_the_unfrozen_group(trained):
    import keras

    from training.finetune import fine_tune
    from training.train import prepare

    prep = prepare(trained["config"])
    head = keras.models.load_model(trained["folder"] / "head.keras")
    feature_model = prep.feature_model
    backbone_before, head_before = _weights(prep.backbone.model), _weights(head)
    train, valid = prep.splits["train"], prep.splits["valid"]
    # One epoch with the top group open from the start: early stopping cannot roll back to a head-only epoch.
    config = FineTuneConfig(epochs=1, lr=1e-3, groups=2, unfreeze=1, gradual=False)
    history = fine_tune(feature_model, head, prep.backbone.preprocess, prep.backbone.input_size,
                        (train.paths[:64], train.labels[:64]), (valid.paths, valid.labels), config)
    assert history["unfrozen_groups"] == [1]
    conv_layers = [name for name in backbone_before if name != "predictions"]
    assert _moved(backbone_before, _weights(prep.backbone.model)) == {conv_layers[-1]}  # top group only
    assert _moved(head_before, _weights(head)) == {"breeds"}  # the frozen standardisation stays


def test_batch_norm_stays_in_inference_mode_while_its_neighbours_train(tmp_path):
    import keras

    from training.finetune import fine_tune
    from training.synthetic import write_dataset

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, name="conv_a")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Conv2D(4, 3, name="conv_b")(keras.layers.ReLU()(x))
    features = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    head = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    bn_before = [w.copy() for w in features.get_layer("bn").get_weights()]
    conv_before = features.get_layer("conv_a").get_weights()[0].copy()
    data = write_dataset(tmp_path, per_class=8, size=32, classes=("a", "b"))
    paths = sorted(data.rglob("*.png"))
    labels = [0 if p.parent.name == "a" else 1 for p in paths]
    config = FineTuneConfig(epochs=2, lr=1e-2, groups=2, unfreeze=2, gradual=False, patience=5, batch_size=8)
    fine_tune(features, head, lambda x: x / 127.5 - 1, 32, (paths, labels), (paths[:4], labels[:4]), config)
    for before, after in zip(bn_before, features.get_layer("bn").get_weights()):
        np.testing.assert_array_equal(before, after)  # gamma, beta, moving mean and variance
    assert not np.array_equal(conv_before, features.get_layer("conv_a").get_weights()[0])


def test_fine_tune_run_keeps_a_servable_head_and_the_whole_model(texture_data, make_config, tmp_path, trained):
    from training.evaluate import evaluate
    from training.train import train

    out = tmp_path / "ft"
    metrics = train(make_config(texture_data, trained["cache"], out_dir=out, strategy="fine-tune", prior="off"))
    card = json.loads((out / "card.json").read_text())
    assert card["serving"] == "whole-model" and (out / "model.keras").is_file() and (out / "head.keras").is_file()
    assert card["accuracy"]["top1"] == metrics["fine_tune"]["test"]["top1"]
    assert card["accuracy"]["head"] == metrics["head"]["test"]["top1"]
    assert metrics["features"]["train"]["computed"] == 0  # the head trained on cached features
    first = metrics["fine_tune"]["history"]["val_loss"][0]
    assert first < 1.2  # it started from the trained head: a random head is at ln(4) = 1.39
    report = evaluate(out, texture_data, cache_dir=trained["cache"], quiet=True)  # through model.keras
    assert report["top1"] == metrics["fine_tune"]["test"]["top1"]


def test_workers_serve_the_fine_tuned_whole_model(texture_data, make_config, tmp_path, trained, tiny_weights):
    """The serving pipeline answers breeds with model.keras, and agrees with it image by image."""
    import keras

    from ml.backbone import load_backbone
    from ml.faces import HaarDetector
    from ml.heads import FineTunedModel, load_trained_head
    from ml.pipeline import Models, classify
    from ml.preprocess import to_input
    from shared.images import load_rgb
    from training.train import train

    out = tmp_path / "ft"
    train(make_config(texture_data, trained["cache"], out_dir=out, strategy="fine-tune", prior="off"))
    backbone = load_backbone("tiny", str(tiny_weights))
    head = load_trained_head(out, "ft", backbone.feature_dim)
    assert isinstance(head, FineTunedModel) and head.name == "fine-tuned:ft"
    photos = sorted(p for p in texture_data.rglob("*.png"))[:6] or sorted(p for p in texture_data.rglob("*.*"))[:6]
    images = [load_rgb(p.read_bytes(), 10**8) for p in photos]
    results = classify(images, Models(backbone, head, HaarDetector()))
    whole = keras.models.load_model(out / "model.keras", compile=False)
    batch = backbone.preprocess(np.stack([to_input(img, backbone.input_size) for img in images]))
    expected = np.asarray(whole(batch, training=False)).argmax(axis=1)
    probs, features = backbone(batch)
    assert np.array_equal(head.predict(probs, features, batch).argmax(axis=1), expected)
    assert [r.model["model_version"] for r in results] == ["ft"] * len(images)
    for result, index in zip(results, expected):
        if result.breeds:  # 'neither' images carry no breeds
            assert result.breeds[0]["breed"] == head.labels[index]
