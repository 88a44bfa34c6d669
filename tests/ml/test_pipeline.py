"""The pure pipeline on arrays: the dog rule, and real weights telling dogs, humans and others apart."""
import numpy as np
import pytest

from ml.backbone import load_backbone
from ml.faces import HaarDetector
from ml.heads import ImageNetDogHead
from ml.imagenet import DOG_FIRST
from ml.pipeline import Models, is_dog
from shared.images import load_rgb
from tests.helpers.pipeline import classify


def test_dog_rules():
    probs = np.zeros(1000)
    probs[DOG_FIRST:DOG_FIRST + 4] = 0.1   # 0.4 of mass spread over four breeds
    probs[300] = 0.3                       # the single best class is not a dog
    probs[500:530] = 0.3 / 30
    assert is_dog(probs, "mass") == (True, pytest.approx(0.4))
    assert is_dog(probs, "top1")[0] is False
    face = np.full(1000, 0.8 / 882)        # a face: ImageNet has no person class, every class is small
    face[DOG_FIRST:DOG_FIRST + 118] = 0.2 / 118
    assert is_dog(face, "mass") == (False, pytest.approx(0.2)), "a small dog mass is no dog, however flat the rest"


def test_real_weights_tell_dogs_humans_and_others(real_data, real_models):
    models = Models(load_backbone("mobilenet_v2", str(real_models / "mobilenet_v2_imagenet.keras")),
                    ImageNetDogHead(), HaarDetector())
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
