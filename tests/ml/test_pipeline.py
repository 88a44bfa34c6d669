"""The pure pipeline on arrays: the dog rule, and real weights telling dogs, humans and others apart."""
import numpy as np
import pytest

from ml.backbone import Backbone, load_backbone
from ml.faces import HaarDetector
from ml.heads import ImageNetDogHead
from ml.imagenet import DOG_FIRST
from ml.pipeline import Models, classify, is_dog
from shared.images import load_rgb


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


class StandInBackbone(Backbone):
    """ImageNet probabilities chosen by the image: a bright red image is a dog, any other is not."""

    def __init__(self) -> None:
        super().__init__(name="stand-in", weights="none", input_size=32, feature_dim=4, model=None,
                         preprocess=lambda x: x)

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # what forward calls (uint8 in)
        probs = np.full((len(batch), 1000), 0.5 / 882, np.float32)
        for row, image in zip(probs, batch):
            dog = image[..., 0].mean() > 200 and image[..., 1].mean() < 50
            row[DOG_FIRST:DOG_FIRST + 118] = (0.9 if dog else 0.1) / 118
        return probs, np.zeros((len(batch), 4), np.float32)


class SeenFaces:
    """A face detector that records the images it was asked about and finds a face in the green ones."""

    name = "seen"

    def __init__(self) -> None:
        self.seen: list[int] = []

    def detect(self, rgb: np.ndarray, full_size: tuple[int, int] | None = None) -> list[dict[str, int]]:
        self.seen.append(int(rgb[0, 0, 2]))  # each image's blue value tells them apart
        return [{"x": 1, "y": 1, "w": 5, "h": 5}] if rgb[..., 1].mean() > 200 else []


def test_faces_are_looked_for_only_when_the_dog_rule_says_no_dog():
    """The one answer path on stand-in models: a dog's answer cannot change with faces, so it skips them."""
    def image(red: int, green: int, tag: int) -> np.ndarray:
        rgb = np.zeros((40, 40, 3), np.uint8)
        rgb[..., 0], rgb[..., 1], rgb[..., 2] = red, green, tag
        return rgb

    faces = SeenFaces()
    models = Models(StandInBackbone(), ImageNetDogHead(), faces)
    results = classify([image(255, 0, 1), image(0, 255, 2), image(0, 0, 3), image(255, 0, 4)], models)
    assert [r.kind for r in results] == ["dog", "human", "neither", "dog"]
    assert faces.seen == [2, 3], "faces were looked for on the two images that are no dog, and only there"
    assert ["faces" in r.stages_ms for r in results] == [False, True, True, False]
    assert [r.batch_size for r in results] == [4] * 4, "one forward pass for all four"
    assert results[0].faces == [] and results[1].faces and not results[1].sentence.startswith("This is a dog")
