"""Feature extraction: it learns, it caches, the ImageNet-row prior is exact and measured both ways."""
from __future__ import annotations

import json
import shutil

import numpy as np

from training.head_training import apply_imagenet_prior, build_head, imagenet_matches
from training.train import prepare, train


def test_training_lifts_accuracy_far_above_chance(trained):
    history = trained["head"]["history"]
    assert trained["test"]["chance"] == 0.25
    assert max(history["val_accuracy"]) >= 0.55, history["val_accuracy"]
    assert trained["test"]["top1"] >= 0.55
    assert history["val_accuracy"][-1] > history["val_accuracy"][0]


def test_run_folder_holds_what_publish_needs(trained):
    folder = trained["folder"]
    card = json.loads((folder / "card.json").read_text())
    labels = json.loads((folder / "labels.json").read_text())["labels"]
    assert labels == ["Zebra", "Honeycomb", "Maze", "Static"]
    assert card["backbone"] == "tiny" and card["weights"] == trained["config"].weights
    assert card["weights_id"].startswith("sha256:") and card["strategy"] == "feature-extraction"
    assert card["accuracy"]["top1"] == trained["test"]["top1"] and card["serving"] == "frozen-backbone+head"
    assert (folder / "head.keras").is_file() and not (folder / "model.keras").exists()


def test_second_run_reads_every_feature_from_the_cache(trained, make_config):
    first = trained["features"]
    assert sum(f["computed"] for f in first.values()) == 400 and sum(f["cache_hits"] for f in first.values()) == 0
    again = prepare(make_config(trained["config"].data_dir, trained["cache"]))
    assert sum(f.computed for f in again.features.values()) == 0
    assert sum(f.hits for f in again.features.values()) == 400
    np.testing.assert_allclose(again.xy("test")[0], prepare(trained["config"]).xy("test")[0])


def test_other_weights_never_reuse_the_cache(trained, make_config, tmp_path):
    from ml.backbone import build_classifier

    other = tmp_path / "other.keras"
    build_classifier("tiny", None).save(other)
    prep = prepare(make_config(trained["config"].data_dir, trained["cache"], weights=str(other)))
    assert sum(f.hits for f in prep.features.values()) == 0


def test_prior_and_no_prior_are_both_measured(trained):
    prior = trained["imagenet_prior"]
    assert prior["matched_imagenet_classes"] == 3  # Zebra, Honeycomb, Maze; Static is no ImageNet class
    assert set(prior["runs"]) == {"no_prior", "imagenet_prior"}
    assert all(0 <= run["test_top1"] <= 1 and run["epochs"] > 0 for run in prior["runs"].values())
    assert prior["chosen"] == min(prior["runs"], key=lambda k: prior["runs"][k]["val_loss"])


def test_prior_rows_give_the_imagenet_classifiers_own_logits(tiny_weights):
    from ml.backbone import load_backbone

    backbone = load_backbone("tiny", str(tiny_weights))
    classes = ["001.Zebra", "002.Honeycomb", "003.Static", "n02085620-Chihuahua"]
    matches = imagenet_matches(classes)
    assert matches == {0: 340, 1: 599, 3: 151}
    rng = np.random.default_rng(0)
    feats = rng.random((5, backbone.feature_dim)).astype(np.float32)
    head = build_head(backbone.feature_dim, 4, scale=(feats.mean(0), feats.var(0) + 0.1))
    apply_imagenet_prior(head, backbone.model, matches)
    norm, dense = head.get_layer("standardise"), head.get_layer("breeds")
    z = np.asarray(norm(feats))
    mine = z @ dense.get_weights()[0] + dense.get_weights()[1]
    kernel, bias = backbone.model.get_layer("predictions").get_weights()
    theirs = feats @ kernel + bias
    for i, j in matches.items():
        np.testing.assert_allclose(mine[:, i], theirs[:, j], rtol=1e-4, atol=1e-4)


def test_unreadable_images_are_listed_and_skipped(texture_data, make_config, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(texture_data, data)
    (data / "002.Honeycomb" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (data / "003.Maze" / "README").write_text("hello")
    metrics = train(make_config(data, tmp_path / "cache", out_dir=tmp_path / "out", prior="off", epochs=3))
    reasons = {path.rsplit("/", 1)[-1]: reason for path, reason in metrics["skipped"]}
    assert set(reasons) == {"broken.jpg", "README"}
    assert sum(metrics["split_sizes"].values()) == 400
