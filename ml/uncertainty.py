"""When the service says "I'm not sure of this breed": a rule on the breed head's top probability.

Calibrated on the team's real photos (../shared/testdata/real, EfficientNet-Lite2; `python
bench/learn.py` prints the figures): the probability the head gives its top breed is what tells a dog
of a breed the model does not know (its probability is spread over look-alikes) from one it names
right. The margin to the second breed and the cosine distance of the features to the nearest learned
breed's mean were tried too and separated no better (a dog of an unknown breed is often close to a
look-alike's mean), so the rule is one threshold per kind of top breed:

- the ImageNet dog head (no version active): uncertain below 0.40 (6 seeded test thirds: 0.62 of the
  unknown-breed dogs flagged, 0.08 of the correctly named ones);
- a head made by `dogbreed models learn`: its softmax is spread over more breeds, and a breed learned
  from one to five photos rarely gets much probability even when right, so its card says: uncertain
  below 0.325 when the top breed is one of the 118 ImageNet breeds, below 0.075 when it is a learned one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from shared.breed_names import COMMON_NAMES

IMAGENET_BREEDS = frozenset(COMMON_NAMES.values())


@dataclass(frozen=True)
class SureRule:
    """Uncertain when the top breed's probability is below `known_below` (one of the 118 ImageNet
    breeds) or `learned_below` (a breed the head learned from labels)."""

    known_below: float = 0.4
    learned_below: float = 0.4

    def uncertain(self, probs: np.ndarray, labels: list[str]) -> bool:
        top = int(np.argmax(probs))
        below = self.known_below if labels[top] in IMAGENET_BREEDS else self.learned_below
        return float(probs[top]) < below

    def to_card(self) -> dict[str, float]:
        return {"known_below": self.known_below, "learned_below": self.learned_below}

    @classmethod
    def from_card(cls, card: dict[str, Any] | None) -> SureRule:
        if not isinstance(card, dict):
            return cls()
        return cls(float(card.get("known_below", cls.known_below)), float(card.get("learned_below", cls.learned_below)))


IMAGENET_RULE = SureRule(0.4, 0.4)
LEARNED_RULE = SureRule(0.325, 0.075)  # `dogbreed models learn` writes this into its card
