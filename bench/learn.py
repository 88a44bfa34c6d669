"""Issue 20's targets on the team's real photos: learning the users' breeds, and an honest "not sure".

A seeded split of the named dogs in ../shared/testdata/real (labels.tsv; `_unknown` left out): in each
breed, about two thirds of its photos are "labeled by users" (a breed with one photo is labeled with
chance 2/3), the rest is the test. The labeled two thirds go through `models learn`'s own steps
(training/learn.py: start from the ImageNet rows and the feature means, fit with the L2 pull) on the
real EfficientNet-Lite2 features (cached as `dogbreed train` caches them); the test third is answered
by the ImageNet dog classes (today) and by the learned head, and the "not sure" rule of each head
(ml/uncertainty.py) is scored. One run prints the table.

Breed names: labels.tsv's folder names go through shared.breed_names.canonical_breed, as a user's label
does. Two folders ImageNet files under other names: `Blenheim_spaniel` is its class 156, named
"Cavalier King Charles spaniel"; `Poodle` covers its three poodle classes, so a Poodle photo is named
right by any of Toy, Miniature or Standard poodle, and labeled as "Standard poodle" (the Udacity
Poodle class it comes from is mostly standard poodles): it counts as a breed ImageNet knows.

    python bench/learn.py                 # seed 0
    python bench/learn.py --seed 3
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from ml.heads import ImageNetDogHead  # noqa: E402
from ml.learned_head import imagenet_probs, softmax  # noqa: E402
from ml.uncertainty import IMAGENET_RULE, LEARNED_RULE, SureRule  # noqa: E402
from shared.breed_names import COMMON_NAMES, breed_key, canonical_breed  # noqa: E402
from training.learn import LearnConfig, fit, make_start, targets  # noqa: E402

TEAM = ROOT.parent / "shared"
REAL = TEAM / "testdata" / "real"
WEIGHTS = TEAM / "models" / "efficientnet_lite2_imagenet.keras"
ALIASES = {"Blenheim_spaniel": "Cavalier King Charles spaniel", "Poodle": "Standard poodle"}
POODLES = {breed_key(n) for n in ("Toy poodle", "Miniature poodle", "Standard poodle")}
KNOWN = {breed_key(n) for n in COMMON_NAMES.values()}
TARGETS = {"top-1 over all named dogs": ">= 0.62", "top-1 on breeds ImageNet knows": ">= zero-shot - 0.01",
           "unknown-breed dogs flagged uncertain": ">= 0.6", "correctly named dogs flagged": "<= 0.15"}


def named_dogs() -> list[tuple[Path, str, str]]:
    """(path, folder breed, canonical breed) of every dog with a breed."""
    with (REAL / "labels.tsv").open() as fh:
        rows = [r for r in csv.DictReader(fh, delimiter="\t") if r["class"] == "dog" and r["breed"].strip()]
    return [(REAL / r["path"], r["breed"], ALIASES.get(r["breed"]) or canonical_breed(r["breed"])) for r in rows]


def split(breeds: list[str], seed: int) -> tuple[list[int], list[int]]:
    """(labeled, test): per breed round(2n/3) photos labeled (at least one left for the test when n >= 2)."""
    rng = np.random.default_rng(seed)
    labeled, test = [], []
    for name in sorted(set(breeds)):
        idx = [i for i, b in enumerate(breeds) if b == name]
        rng.shuffle(idx)
        k = min(round(len(idx) * 2 / 3), len(idx) - 1) if len(idx) > 1 else int(rng.random() < 2 / 3)
        labeled += idx[:k]
        test += idx[k:]
    return sorted(labeled), sorted(test)


def features(paths: list[Path]):
    from ml.backbone import load_backbone
    from shared.settings import Settings
    from training.features import FeatureCache, extract, weights_identity

    backbone = load_backbone("efficientnet_lite2", str(WEIGHTS))
    cache = FeatureCache(Settings.from_env().feature_cache_dir, backbone.name, weights_identity(str(WEIGHTS)),
                         backbone.input_size)
    feats = extract(backbone, paths, cache, desc="real dogs")
    if feats.skipped:
        raise SystemExit(f"unreadable photos: {feats.skipped}")
    return backbone.model, feats.vectors.astype(np.float64)


def measure(probs: np.ndarray, labels: list[str], truth: list[str], folders: list[str], known: set[str],
            rule: SureRule) -> dict[str, float]:
    """The four measures for one head on the test photos; `known`: the breed keys this head has."""
    named = [breed_key(labels[int(i)]) for i in probs.argmax(1)]
    right = np.array([n in POODLES if f == "Poodle" else n == breed_key(t) for n, t, f in zip(named, truth, folders)])
    imagenet = np.array([breed_key(t) in KNOWN for t in truth])
    unknown = np.array([breed_key(t) not in known for t in truth])
    flagged = np.array([rule.uncertain(row, labels) for row in probs])
    return {"top-1 over all named dogs": right.mean(), "top-1 on breeds ImageNet knows": right[imagenet].mean(),
            "unknown-breed dogs flagged uncertain": flagged[unknown].mean() if unknown.any() else float("nan"),
            "correctly named dogs flagged": flagged[right].mean(),
            "(test photos / ImageNet breeds / unknown to this head)": (len(truth), int(imagenet.sum()),
                                                                        int(unknown.sum()))}


def run(seed: int) -> dict[str, dict]:
    dogs = named_dogs()
    classifier, x = features([p for p, _, _ in dogs])
    folders, truth = [f for _, f, _ in dogs], [c for _, _, c in dogs]
    labeled, test = split(truth, seed)
    config = LearnConfig(name="bench")
    start = make_start(classifier, x[labeled], [truth[i] for i in labeled])
    w, b = fit(x[labeled], targets(start.labels, [truth[i] for i in labeled]), start.kernel, start.bias,
               config.l2, config.steps, config.lr)
    xt, tt, ft = x[test], [truth[i] for i in test], [folders[i] for i in test]
    zero = ImageNetDogHead()
    zero_probs = zero.predict(imagenet_probs(classifier, xt), xt, xt)
    learned_keys = KNOWN | {breed_key(n) for n in start.labels}
    return {"zero-shot (today)": measure(zero_probs, zero.labels, tt, ft, KNOWN, IMAGENET_RULE),
            f"learned ({len(labeled)} labels, +{len(start.photos)} breeds)":
                measure(softmax(xt @ w + b), start.labels, tt, ft, learned_keys, LEARNED_RULE)}


def shown(value) -> str:
    if isinstance(value, tuple):
        return "/".join(str(v) for v in value)
    return f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not REAL.is_dir() or not WEIGHTS.is_file():
        print(f"skipped: {REAL} or {WEIGHTS} is absent (the team's photos and weights live beside the checkout)")
        return
    columns = run(args.seed)
    rows = list(next(iter(columns.values())))
    width = max(len(r) for r in rows)
    heads = [*columns, "target"]
    print(f"seed {args.seed}: test third of the named dogs in {REAL}\n")
    print(f"| {'':<{width}} | " + " | ".join(heads) + " |")
    print(f"|{'-' * (width + 2)}|" + "|".join("-" * (len(c) + 2) for c in heads) + "|")
    for row in rows:
        cells = [f"{shown(columns[c][row]):<{len(c)}}" for c in columns] + [f"{TARGETS.get(row, ''):<6}"]
        print(f"| {row:<{width}} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
