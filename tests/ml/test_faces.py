"""Real OpenCV on real photos: faces found on people, boxes in full-size pixels."""
from pathlib import Path

import numpy as np
import pytest

from ml.faces import HaarDetector
from shared.images import load_rgb


@pytest.fixture(scope="module")
def detector():
    return HaarDetector()


def photos(real_data: Path, folder: str) -> list[Path]:
    return sorted(p for p in (real_data / folder).rglob("*") if p.is_file())


def test_finds_faces_in_most_human_photos(real_data, detector):
    humans = photos(real_data, "humans")
    found = sum(bool(detector.detect(load_rgb(p.read_bytes(), 10**8))) for p in humans)
    # lfwgray crops fill the frame and defeat Haar cascades; the rest should be found.
    assert found / len(humans) >= 0.75, f"faces found in only {found}/{len(humans)} human photos"


def test_rarely_sees_faces_in_dog_photos(real_data, detector):
    dogs = photos(real_data, "dogs")[::4]
    false = sum(bool(detector.detect(load_rgb(p.read_bytes(), 10**8))) for p in dogs)
    assert false / len(dogs) <= 0.25, f"false faces in {false}/{len(dogs)} dog photos"


def test_boxes_are_scaled_to_the_full_image(real_data, detector):
    photo = next(p for p in photos(real_data, "humans") if "deepface" in p.name)
    rgb = load_rgb(photo.read_bytes(), 10**8)
    boxes = detector.detect(rgb, full_size=(rgb.shape[1] * 2, rgb.shape[0] * 2))
    same = detector.detect(rgb)
    assert boxes and len(boxes) == len(same)
    assert all(abs(b["x"] - 2 * s["x"]) <= 2 and abs(b["w"] - 2 * s["w"]) <= 2 for b, s in zip(boxes, same))


def test_no_face_in_flat_noise(detector):
    assert detector.detect(np.full((300, 400, 3), 127, np.uint8)) == []
