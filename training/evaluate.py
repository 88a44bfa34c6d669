"""`dogbreed evaluate MODEL DATA_DIR`: top-1/top-5, per-breed accuracy, confusions; report.json + report.png."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ml import model_folder
from ml.backbone import load_backbone
from ml.imagenet import readable
from ml.model_folder import HEAD_FILE
from shared.settings import Settings
from training.dataset import Split, load_dataset
from training.features import FeatureCache, extract, weights_identity
from training.head_training import predict
from training.metrics import summarize
from training.plots import report_png


def _images(data_dir: Path, split: str, seed: int, labels: list[str]) -> tuple[Split, list[tuple[str, str]]]:
    """The split's images whose class the model knows, relabelled to the model's output order."""
    dataset = load_dataset(data_dir, seed=seed)
    chosen = Split()
    for name in (("train", "valid", "test") if split == "all" else (split,)):
        part = dataset.splits[name]
        chosen = Split(chosen.paths + part.paths, chosen.labels + part.labels)
    index = {label: i for i, label in enumerate(labels)}
    out, skipped = Split(), list(dataset.skipped)
    for path, label in zip(chosen.paths, chosen.labels):
        name = readable(dataset.classes[label])
        if name in index:
            out.paths.append(path)
            out.labels.append(index[name])
        else:
            skipped.append((str(path), f"class {name!r} is not one of the model's labels"))
    return out, skipped


def evaluate(model_dir: Path, data_dir: Path, split: str = "test", weights: str | None = None,
             cache_dir: Path = Settings.feature_cache_dir, out_dir: Path | None = None,
             quiet: bool = False) -> dict[str, Any]:
    import keras

    model_dir = Path(model_dir)
    card = model_folder.read_card(model_dir)
    labels = [readable(x) for x in model_folder.read_labels(model_dir)]
    if "backbone" not in card:
        raise model_folder.ModelFolderError(f"{model_dir}: no card.json naming the backbone; was it made by `dogbreed train`?")
    weights = weights or card.get("weights", "imagenet")
    data, skipped = _images(Path(data_dir), split, int(card.get("seed", 0)), labels)
    backbone = load_backbone(card["backbone"], weights)
    whole = model_dir / model_folder.MODEL_FILE
    if card.get("serving") == "whole-model" and whole.is_file():
        from training.finetune import batches

        model = keras.models.load_model(whole, compile=False)
        probs = np.concatenate([np.asarray(model(backbone.preprocess(x), training=False))
                                for x, _ in batches(data.paths, data.labels, backbone.input_size, 32)])
        kept = list(range(len(data)))
    else:
        cache = FeatureCache(cache_dir, backbone.name, weights_identity(weights), backbone.input_size)
        feats = extract(backbone, data.paths, cache, desc="features")
        skipped += feats.skipped
        probs, kept = predict(keras.models.load_model(model_dir / HEAD_FILE, compile=False), feats.vectors), feats.kept
    summary = summarize(probs, np.asarray(data.labels)[kept], labels)
    out = Path(out_dir or model_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = {"model": str(model_dir), "data": str(data_dir), "split": split, "skipped": skipped, **summary}
    model_folder.write_json(out / "report.json", report)
    metrics = model_folder.read_json(model_dir / model_folder.METRICS_FILE)
    title = f"{card.get('name', model_dir.name)} on {Path(data_dir).name} ({split})"
    report_png(out / "report.png", summary, metrics, title, labels)
    if not quiet:
        print(f"{summary['images']} images: top-1 {summary['top1']:.3f}, top-5 {summary['top5']:.3f} "
              f"(chance {summary['chance']:.3f})")
        worst = sorted(summary["per_breed"].items(), key=lambda kv: kv[1]["accuracy"])[:5]
        print("weakest breeds: " + ", ".join(f"{k} {v['accuracy']:.2f}" for k, v in worst))
        for pair in summary["most_confused"][:5]:
            print(f"  {pair['true']} taken for {pair['predicted']}: {pair['count']} image(s)")
        print(f"wrote {out / 'report.json'} and {out / 'report.png'}")
    return report
