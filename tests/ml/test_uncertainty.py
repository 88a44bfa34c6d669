"""An honest "not sure" on real photos and the real EfficientNet-Lite2 weights: a dog of a breed
ImageNet lacks is flagged and the sentence names the closest breeds; a clear photo of a known breed is not."""
from __future__ import annotations

import numpy as np
import pytest

from ml.uncertainty import IMAGENET_RULE, LEARNED_RULE, SureRule
from tests.helpers.services import REAL_MODELS

LITE2 = REAL_MODELS / "efficientnet_lite2_imagenet.keras"
UNKNOWN = ["dogs/Australian_shepherd/wiki__australian_shepherd_2.jpg",  # ImageNet has neither breed
           "dogs/Bearded_collie/wiki__bearded_collie_3.jpg"]
KNOWN = {"dogs/Borzoi/wiki__borzoi_4.jpg": "Borzoi", "dogs/Chow_chow/wiki__chow_chow_1.jpg": "Chow chow"}


def test_unknown_breeds_are_flagged_and_known_ones_named(real_data):
    if not LITE2.is_file():
        pytest.skip(f"{LITE2} is absent (only the team's checkout has the real weights)")
    from ml.backbone import load_backbone
    from ml.faces import HaarDetector
    from ml.heads import ImageNetDogHead
    from ml.pipeline import Models, classify
    from shared.images import load_rgb

    models = Models(load_backbone("efficientnet_lite2", str(LITE2)), ImageNetDogHead(), HaarDetector())
    paths = [*UNKNOWN, *KNOWN]
    results = classify([load_rgb((real_data / p).read_bytes(), 10**8, 640) for p in paths], models)
    assert [r.kind for r in results] == ["dog"] * 4, "a dog of an unknown breed is still a dog"
    for result in results[:2]:
        first, second = (b["breed"] for b in result.breeds[:2])
        assert result.uncertain is True and result.to_dict()["uncertain"] is True
        assert "I'm not sure of this breed" in result.sentence and first in result.sentence \
            and second in result.sentence, result.sentence
    for result, breed in zip(results[2:], KNOWN.values()):
        assert result.uncertain is False and result.breeds[0]["breed"] == breed
        assert result.sentence.startswith(f"This is a dog, and it looks most like a {breed}"), result.sentence


def test_the_rule_reads_the_top_breed_and_its_kind():
    labels = ["Borzoi", "Shikoku"]  # one of the 118, one learned
    assert IMAGENET_RULE.uncertain(np.array([0.39, 0.61]), ["Borzoi", "Beagle"]) is False
    assert IMAGENET_RULE.uncertain(np.array([0.35, 0.30]), ["Borzoi", "Beagle"]) is True
    assert LEARNED_RULE.uncertain(np.array([0.2, 0.1]), labels) is True, "a known breed under 0.325"
    assert LEARNED_RULE.uncertain(np.array([0.02, 0.1]), labels) is False, "a learned breed over 0.075"
    assert SureRule.from_card(LEARNED_RULE.to_card()) == LEARNED_RULE and SureRule.from_card(None) == SureRule()
