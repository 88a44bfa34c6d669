"""Data sets: readable labels, seeded stratified splits, given splits honoured, bad files skipped."""
from __future__ import annotations

from collections import Counter

import pytest
from PIL import Image

from training.dataset import DatasetError, fraction, load_dataset
from training.synthetic import write_dataset


def test_udacity_and_stanford_folder_names_become_readable_labels(tmp_path):
    names = ("001.Affenpinscher", "n02085620-Chihuahua", "Labrador_retriever")
    write_dataset(tmp_path, per_class=3, size=16, classes=names)
    assert load_dataset(tmp_path).labels == ["Affenpinscher", "Labrador retriever", "Chihuahua"]


def test_split_is_stratified_seeded_and_disjoint(tmp_path):
    write_dataset(tmp_path, per_class=20, size=16)
    first, again, other = load_dataset(tmp_path, seed=3), load_dataset(tmp_path, seed=3), load_dataset(tmp_path, seed=4)
    sizes = {k: Counter(v.labels) for k, v in first.splits.items()}
    assert all(sizes["train"][c] == 16 and sizes["valid"][c] == 2 and sizes["test"][c] == 2 for c in range(4))
    assert first.made_split
    paths = [set(s.paths) for s in first.splits.values()]
    assert not (paths[0] & paths[1]) and not (paths[0] & paths[2]) and not (paths[1] & paths[2])
    assert first.splits["test"].paths == again.splits["test"].paths
    assert first.splits["test"].paths != other.splits["test"].paths


def test_given_train_valid_test_folders_are_used_as_they_are(tmp_path):
    write_dataset(tmp_path, size=16, splits={"train": 6, "valid": 2, "test": 3})
    dataset = load_dataset(tmp_path)
    assert not dataset.made_split
    assert [len(dataset.splits[k]) for k in ("train", "valid", "test")] == [24, 8, 12]
    assert all("/test/" in str(p) for p in dataset.splits["test"].paths)


def test_fraction_keeps_every_class(tmp_path):
    write_dataset(tmp_path, per_class=20, size=16)
    train = load_dataset(tmp_path).splits["train"]
    small = fraction(train, 0.1, seed=0)
    assert Counter(small.labels) == {0: 2, 1: 2, 2: 2, 3: 2}
    assert set(small.paths) <= set(train.paths)


def test_non_image_files_are_listed_not_fatal(tmp_path):
    write_dataset(tmp_path, per_class=5, size=16)
    (tmp_path / "001.Zebra" / "notes.txt").write_text("not a photo")
    dataset = load_dataset(tmp_path)
    assert [reason for path, reason in dataset.skipped if path.endswith("notes.txt")] == ["not an image file"]


def test_a_folder_without_classes_is_explained(tmp_path):
    Image.new("RGB", (16, 16)).save(tmp_path / "lonely.png")
    with pytest.raises(DatasetError, match="class folder"):
        load_dataset(tmp_path)
