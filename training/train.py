"""`dogbreed train`: folder of labelled photos -> a model folder ready for `dogbreed models publish`."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ml import model_folder
from ml.backbone import Backbone, load_backbone
from ml.model_folder import HEAD_FILE, LABELS_FILE
from shared.settings import Settings
from training.dataset import Dataset, Split, load_dataset
from training.features import FeatureCache, Features, extract, weights_identity
from training.finetune import fine_tune, predict_images, whole_model
from training.head_training import apply_imagenet_prior, build_head, imagenet_matches, predict, train_head
from training.metrics import summarize
from training.schedules import FineTuneConfig

STRATEGIES = ("feature-extraction", "fine-tune")


@dataclass(frozen=True)
class TrainConfig:
    data_dir: Path
    backbone: str = Settings.backbone
    weights: str = "imagenet"
    strategy: str = "feature-extraction"
    out_dir: Path | None = None
    cache_dir: Path = Settings.feature_cache_dir
    model_dir: Path = Settings.model_dir  # where a backbone built on first use (Lite2) is cached
    prior: str = "compare"  # compare | on | off: the ImageNet-row start for breeds ImageNet knows
    epochs: int = 60
    patience: int = 6
    lr: float = 1e-3
    dropout: float = 0.3
    batch_size: int = 64
    seed: int = 0
    finetune: FineTuneConfig = field(default_factory=FineTuneConfig)
    quiet: bool = False


@dataclass
class TrainingData:
    """The data set, the backbone and every split's cached features, ready for any number of heads."""

    config: TrainConfig
    dataset: Dataset
    backbone: Backbone
    features: dict[str, Features]
    splits: dict[str, Split]  # only the images that could be read, aligned with features[split].vectors

    def xy(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        return self.features[split].vectors, np.asarray(self.splits[split].labels, np.int32)

    @property
    def feature_model(self):
        import keras

        return keras.Model(self.backbone.model.input, self.backbone.model.outputs[1], name="features")


def say(config: TrainConfig, message: str) -> None:
    if not config.quiet:
        print(message, flush=True)


def prepare(config: TrainConfig) -> TrainingData:
    import keras

    keras.utils.set_random_seed(config.seed)
    dataset = load_dataset(config.data_dir, seed=config.seed)
    sizes = ", ".join(f"{k} {len(v)}" for k, v in dataset.splits.items())
    say(config, f"{dataset.name}: {len(dataset.classes)} classes; {sizes}"
                f"{' (seeded stratified 80/10/10 split)' if dataset.made_split else ''}")
    backbone = load_backbone(config.backbone, config.weights, config.model_dir)
    cache = FeatureCache(config.cache_dir, backbone.name, weights_identity(config.weights), backbone.input_size)
    features, splits = {}, {}
    for name, split in dataset.splits.items():
        feats = extract(backbone, split.paths, cache, desc=f"{name} features")
        features[name], splits[name] = feats, split.subset(feats.kept)
        dataset.skipped += feats.skipped
    hits = sum(f.hits for f in features.values())
    computed = sum(f.computed for f in features.values())
    say(config, f"features: {computed} computed, {hits} from the cache ({cache.folder})")
    for path, reason in dataset.skipped:
        say(config, f"skipped {path}: {reason}")
    return TrainingData(config, dataset, backbone, features, splits)


def fit_head(prep: TrainingData, use_prior: bool, train: Split | None = None, quiet: bool | None = None):
    """A fresh seeded head, optionally started from the ImageNet rows, trained on cached features."""
    import keras

    cfg = prep.config
    keras.utils.set_random_seed(cfg.seed)
    if train is None:
        x, y = prep.xy("train")
    else:
        x, y = _vectors_of(prep, train), np.asarray(train.labels, np.int32)
    head = build_head(prep.backbone.feature_dim, len(prep.dataset.classes), cfg.dropout, cfg.seed,
                      scale=(x.mean(0), x.var(0)))
    if use_prior:
        apply_imagenet_prior(head, prep.backbone.model, imagenet_matches(prep.dataset.classes))
    history = train_head(head, (x, y), prep.xy("valid"), cfg.epochs, cfg.patience, cfg.lr, cfg.batch_size,
                         stage="head+prior" if use_prior else "head", quiet=cfg.quiet if quiet is None else quiet)
    return head, history


def _vectors_of(prep: TrainingData, subset: Split) -> np.ndarray:
    index = {p: i for i, p in enumerate(prep.splits["train"].paths)}
    return prep.features["train"].vectors[[index[p] for p in subset.paths]]


def best_head(prep: TrainingData) -> tuple[Any, dict[str, Any]]:
    """Train with and/or without the ImageNet-row prior, report both, keep the lower validation loss."""
    matches = imagenet_matches(prep.dataset.classes)
    modes = {"compare": [False, True], "on": [True], "off": [False]}[prep.config.prior]
    if not matches:
        modes = [False]
    runs = {}
    for use_prior in modes:
        head, history = fit_head(prep, use_prior)
        x, y = prep.xy("test")
        test = summarize(predict(head, x), y, prep.dataset.labels)
        val_loss = min(history.get("val_loss", history["loss"]))
        key = "imagenet_prior" if use_prior else "no_prior"
        runs[key] = {"head": head, "history": history, "val_loss": val_loss, "test_top1": test["top1"],
                     "test_top5": test["top5"], "epochs": len(history["loss"])}
        say(prep.config, f"head {key.replace('_', ' ')}: test top-1 {test['top1']:.3f}, top-5 {test['top5']:.3f}, "
                         f"best val loss {val_loss:.4f}")
    chosen = min(runs, key=lambda k: runs[k]["val_loss"])
    report = {"matched_imagenet_classes": len(matches), "chosen": chosen,
              "runs": {k: {m: v for m, v in r.items() if m != "head"} for k, r in runs.items()}}
    return runs[chosen]["head"], report


def train(config: TrainConfig) -> dict[str, Any]:
    """The whole `dogbreed train` run; returns the metrics written to metrics.json."""
    import keras

    if config.strategy not in STRATEGIES:
        raise ValueError(f"--strategy must be one of {', '.join(STRATEGIES)}")
    started = time.monotonic()
    prep = prepare(config)
    head, prior_report = best_head(prep)
    out = Path(config.out_dir or default_out_dir(config, prep.dataset.name))
    out.mkdir(parents=True, exist_ok=True)
    head.save(out / HEAD_FILE)
    x, y = prep.xy("test")
    test = summarize(predict(head, x), y, prep.dataset.labels)
    metrics: dict[str, Any] = {"head": {"history": prior_report["runs"][prior_report["chosen"]]["history"],
                                        "test": test}, "imagenet_prior": prior_report}
    serving = "frozen-backbone+head"
    if config.strategy == "fine-tune":
        tuned = keras.models.clone_model(head)
        tuned.set_weights(head.get_weights())
        metrics["fine_tune"] = run_fine_tune(prep, tuned, prep.splits["train"], out / model_folder.MODEL_FILE)
        test = metrics["fine_tune"]["test"]
        serving = "whole-model"
        say(config, f"fine-tuned whole model: test top-1 {test['top1']:.3f} "
                    f"(the frozen backbone + head alone: {metrics['head']['test']['top1']:.3f})")
    labels = prep.dataset.labels
    model_folder.write_json(out / LABELS_FILE, {"labels": labels, "classes": prep.dataset.classes})
    metrics.update(test=test, seconds=round(time.monotonic() - started, 1), skipped=prep.dataset.skipped,
                   features={k: {"computed": f.computed, "cache_hits": f.hits} for k, f in prep.features.items()},
                   split_sizes={k: len(v) for k, v in prep.splits.items()})
    model_folder.write_json(out / model_folder.METRICS_FILE, metrics)
    model_folder.write_json(out / model_folder.CARD_FILE, make_card(prep, metrics, serving, out.name))
    say(config, f"test accuracy: top-1 {test['top1']:.3f}, top-5 {test['top5']:.3f} over {test['images']} images "
                f"(chance {test['chance']:.3f}); model folder: {out}")
    say(config, f"next: dogbreed models publish {out}")
    return {**metrics, "out_dir": str(out)}


def run_fine_tune(prep: TrainingData, head: Any, train: Split, checkpoint: Path | None = None) -> dict[str, Any]:
    """Fine-tune a copy of the backbone from `head`; the backbone's starting weights are restored after."""
    start = prep.backbone.model.get_weights()
    feature_model = prep.feature_model
    cfg = prep.config.finetune
    valid = prep.splits["valid"]
    try:
        history = fine_tune(feature_model, head, prep.backbone.preprocess, prep.backbone.input_size,
                            (train.paths, train.labels), (valid.paths, valid.labels), cfg, quiet=prep.config.quiet)
        test_split = prep.splits["test"]
        probs = predict_images(feature_model, head, prep.backbone.preprocess, prep.backbone.input_size,
                               test_split.paths)
        test = summarize(probs, np.asarray(test_split.labels), prep.dataset.labels)
        if checkpoint is not None:
            whole_model(feature_model, head).save(checkpoint)
    finally:
        prep.backbone.model.set_weights(start)
    return {"history": history, "test": test, "config": asdict(cfg)}


def default_out_dir(config: TrainConfig, dataset: str) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return Path("var/runs") / f"{dataset}-{config.backbone}-{config.strategy}-{stamp}"


def make_card(prep: TrainingData, metrics: dict[str, Any], serving: str, name: str) -> dict[str, Any]:
    cfg = prep.config
    card = {
        "name": name, "backbone": cfg.backbone, "weights": cfg.weights,
        "weights_id": weights_identity(cfg.weights) if cfg.weights.lower() not in ("random", "none") else "random",
        "input_size": prep.backbone.input_size, "feature_dim": prep.backbone.feature_dim,
        "dataset": {"name": prep.dataset.name, "path": str(Path(cfg.data_dir).resolve()),
                    "classes": len(prep.dataset.classes), "images": metrics["split_sizes"]},
        "strategy": cfg.strategy, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "accuracy": {"top1": metrics["test"]["top1"], "top5": metrics["test"]["top5"],
                     "head": metrics["head"]["test"]["top1"]},
        "imagenet_prior": metrics["imagenet_prior"]["chosen"] == "imagenet_prior", "seed": cfg.seed,
        "serving": serving,
    }
    if serving == "whole-model":
        card["notes"] = ("model.keras is the fine-tuned whole network (accuracy.top1); workers serve it. head.keras "
                         "is the stage-one head on the frozen backbone (accuracy.head).")
    return card
