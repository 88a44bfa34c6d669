"""The pure pipeline: one forward pass per batch, batched answers equal one-at-a-time answers."""
import numpy as np
import pytest

from shared.images import load_rgb
from tests.helpers import images as make
from worker.faces import FaceDetector
from worker.models.backbone import load_backbone
from worker.models.heads import DOG_FIRST, ImageNetDogHead
from worker.pipeline import Models, classify, is_dog


@pytest.fixture(scope="module")
def tiny_models():
    return Models(load_backbone("tiny", "random"), ImageNetDogHead(), FaceDetector())


def test_batched_answers_equal_single_answers(tiny_models):
    imgs = [make.rgb_array(80 + 10 * i, 60, seed=i) for i in range(5)]
    batched = classify(imgs, tiny_models)
    single = [classify([img], tiny_models)[0] for img in imgs]
    for b, s in zip(batched, single):
        assert b.kind == s.kind and [x["breed"] for x in b.breeds] == [x["breed"] for x in s.breeds]
        assert b.dog_score == pytest.approx(s.dog_score, abs=1e-5)


def test_one_backbone_call_per_batch(tiny_models, monkeypatch):
    calls = []
    original = type(tiny_models.backbone).__call__
    monkeypatch.setattr(type(tiny_models.backbone), "__call__", lambda self, b: (calls.append(len(b)), original(self, b))[1])
    classify([make.rgb_array(seed=i) for i in range(4)], tiny_models)
    assert calls == [4]


def test_result_names_the_models_that_answered(tiny_models):
    [result] = classify([make.rgb_array()], tiny_models)
    assert result.model == {"backbone": "tiny", "weights": "random", "head": "imagenet-dogs", "model_version": None}
    assert result.kind in ("dog", "human", "neither") and result.sentence


def test_dog_rules():
    probs = np.zeros(1000)
    probs[DOG_FIRST:DOG_FIRST + 4] = 0.1   # 0.4 of mass spread over four breeds
    probs[300] = 0.3                       # the single best class is not a dog
    probs[500:530] = 0.3 / 30
    assert is_dog(probs, "mass") == (True, pytest.approx(0.4))
    assert is_dog(probs, "top1")[0] is False


def test_real_weights_tell_dogs_humans_and_others(real_data, real_models):
    models = Models(load_backbone("mobilenet_v2", str(real_models / "mobilenet_v2_imagenet.keras")),
                    ImageNetDogHead(), FaceDetector())
    picks = {
        "dogs": sorted((real_data / "dogs").rglob("imagenet__*"))[:8],
        "humans": sorted((real_data / "humans").glob("deepface__*"))[:6],
        "other": sorted((real_data / "other").glob("imagenet__*"))[:8],
    }
    kinds = {k: [r.kind for r in classify([load_rgb(p.read_bytes(), 10**8, 640) for p in v], models)]
             for k, v in picks.items()}
    assert kinds["dogs"].count("dog") >= 7, kinds["dogs"]
    assert kinds["humans"].count("human") >= 5, kinds["humans"]
    assert kinds["other"].count("dog") <= 1, kinds["other"]
    dogs = classify([load_rgb(p.read_bytes(), 10**8, 640) for p in picks["dogs"]], models)
    right = sum(p.parent.name.replace("_", " ").lower() in [b["breed"].lower() for b in r.breeds]
                for p, r in zip(picks["dogs"], dogs))
    assert right >= 4, f"true breed in the top-5 for only {right}/8 ImageNet dog photos"
