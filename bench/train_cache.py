"""Head training with cached features against without, as a ratio, in one run.

    python bench/train_cache.py                            # MobileNetV2, 400 generated 224 px images
    python bench/train_cache.py --backbone tiny --images 800  # the test stand-in: features cost little

"Without" computes every image's backbone features and then trains the head; "with" reads the same
features from the cache written by that first run and trains the same head. Weights are random
(saved to a file so the cache key is stable): the backbone's cost does not depend on its values.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def timed_run(config) -> tuple[float, float, int]:
    """(seconds to features, seconds to a trained head, features computed)."""
    from training.train import fit_head, prepare

    started = time.perf_counter()
    prep = prepare(config)
    features_done = time.perf_counter()
    fit_head(prep, use_prior=False)
    return features_done - started, time.perf_counter() - started, sum(f.computed for f in prep.features.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="mobilenet_v2")
    parser.add_argument("--images", type=int, default=400, help="images in all, over four classes")
    parser.add_argument("--epochs", type=int, default=20, help="head epochs, the same in both runs")
    args = parser.parse_args()

    from ml.backbone import SPECS, build_classifier
    from training.synthetic import write_dataset
    from training.train import TrainConfig

    with tempfile.TemporaryDirectory(prefix="bench-train-cache-") as tmp:
        root = Path(tmp)
        data = write_dataset(root / "data", per_class=args.images // 4, size=SPECS[args.backbone][2], seed=0)
        weights = root / "weights.keras"
        build_classifier(args.backbone, None).save(weights)
        config = TrainConfig(data_dir=data, backbone=args.backbone, weights=str(weights), cache_dir=root / "cache",
                             epochs=args.epochs, patience=args.epochs, prior="off", quiet=True)
        timed_run(replace(config, cache_dir=root / "warm-up"))  # TensorFlow start-up and tracing, not measured
        cold_features, cold, computed = timed_run(config)
        warm_features, warm, recomputed = timed_run(config)
    print(f"backbone {args.backbone}, {args.images} images, {args.epochs} head epochs")
    print(f"without cache: {cold:7.2f} s  ({cold_features:.2f} s computing {computed} images' features)")
    print(f"with cache:    {warm:7.2f} s  ({warm_features:.2f} s reading features, {recomputed} computed)")
    print(f"ratio without/with: {cold / warm:.2f}x")
    return 0 if recomputed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
