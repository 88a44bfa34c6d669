"""Fine-tuning: from the trained head, unfreeze the backbone's top groups with ULMFiT's schedules."""
from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from training.dataset import read_image
from training.progress import EpochLog
from training.schedules import FineTuneConfig, group_rates, layer_groups, slanted_triangular, unfrozen_groups


def batches(paths: Sequence[Path], labels: Sequence[int], size: int, batch_size: int,
            shuffle_seed: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Decoded image batches, read by a thread pool one batch ahead; the set need not fit in memory."""
    order = list(range(len(paths)))
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(order)
    chunks = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]

    def load(chunk: list[int]) -> tuple[np.ndarray, np.ndarray]:
        return (np.stack([read_image(paths[i], size) for i in chunk]),
                np.asarray([labels[i] for i in chunk], np.int32))

    with ThreadPoolExecutor(max_workers=4) as pool:
        ahead = pool.submit(load, chunks[0]) if chunks else None
        for k in range(len(chunks)):
            current = ahead.result()
            ahead = pool.submit(load, chunks[k + 1]) if k + 1 < len(chunks) else None
            yield current


def augmenter(seed: int):
    """Flip, crop-like shift and zoom, a small rotation, brightness and contrast; on 0..255 pixels."""
    import keras

    return keras.Sequential([
        keras.layers.RandomFlip("horizontal", seed=seed),
        keras.layers.RandomTranslation(0.08, 0.08, fill_mode="reflect", seed=seed + 1),
        keras.layers.RandomZoom((-0.15, 0.0), fill_mode="reflect", seed=seed + 2),
        keras.layers.RandomRotation(0.03, fill_mode="reflect", seed=seed + 3),
        keras.layers.RandomBrightness(0.15, value_range=(0, 255), seed=seed + 4),
        keras.layers.RandomContrast(0.15, value_range=(0, 255), seed=seed + 5),
    ], name="augment")


def whole_model(feature_model: Any, head: Any):
    """Preprocessed image -> breed softmax, the backbone always in inference mode."""
    import keras

    inputs = keras.Input(feature_model.input.shape[1:], name="image")
    return keras.Model(inputs, head(feature_model(inputs, training=False)), name="breed_model")


def fine_tune(feature_model: Any, head: Any, preprocess: Callable, input_size: int,
              train: tuple[Sequence[Path], Sequence[int]], valid: tuple[Sequence[Path], Sequence[int]],
              config: FineTuneConfig, checkpoint: Path | None = None, quiet: bool = False) -> dict[str, list]:
    """Trains `head` and the top `config.unfreeze` layer groups in place; restores the best epoch."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(config.seed)
    backbone_groups = layer_groups(feature_model, config.groups)[::-1][:config.unfreeze]  # top first
    variables = [list(head.trainable_weights)] + [[v for layer in g for v in layer.trainable_weights]
                                                  for g in backbone_groups]
    optimizers = [keras.optimizers.Adam(config.lr) for _ in variables]
    for opt, group in zip(optimizers, variables):
        opt.build(group)
    augment = augmenter(config.seed) if config.augment else None
    steps_per_epoch = max(1, -(-len(train[0]) // config.batch_size))
    total = steps_per_epoch * config.epochs
    log = EpochLog("fine-tune", config.epochs, quiet)
    history: dict[str, list] = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": [],
                                "lr": [], "unfrozen_groups": []}
    best = (float("inf"), None)
    waited, step = 0, 0

    def make_step(active: int):
        train_vars = [v for group in variables[:active + 1] for v in group]

        @tf.function(reduce_retracing=True)
        def run(x, y):
            if augment is not None:
                x = augment(x, training=True)
            with tf.GradientTape() as tape:
                probs = head(feature_model(preprocess(x), training=False), training=True)
                loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, probs))
            grads = tape.gradient(loss, train_vars)
            offset = 0
            for opt, group in zip(optimizers, variables[:active + 1]):
                opt.apply_gradients(zip(grads[offset:offset + len(group)], group))
                offset += len(group)
            hits = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(probs, -1, output_type=tf.int32), y), tf.float32))
            return loss, hits

        return run

    for epoch in range(config.epochs):
        active = unfrozen_groups(epoch, config)
        run = make_step(active)
        losses, hits, seen = 0.0, 0.0, 0
        for x, y in batches(train[0], train[1], input_size, config.batch_size, config.seed + epoch):
            peak = slanted_triangular(step, total, config.lr, config.cut_frac, config.ratio) \
                if config.slanted else config.lr
            for opt, rate in zip(optimizers, group_rates(peak, active + 1, config)):
                opt.learning_rate = rate
            loss, hit = run(tf.constant(x), tf.constant(y))
            losses += float(loss) * len(y)
            hits += float(hit)
            seen += len(y)
            step += 1
        val_loss, val_acc = evaluate_images(feature_model, head, preprocess, input_size, valid, config.batch_size)
        logs = {"loss": losses / max(1, seen), "accuracy": hits / max(1, seen),
                "val_loss": val_loss, "val_accuracy": val_acc}
        for key, value in logs.items():
            history[key].append(value)
        history["lr"].append(peak)
        history["unfrozen_groups"].append(active)
        log.epoch(epoch, logs)
        if val_loss < best[0]:
            best, waited = (val_loss, (feature_model.get_weights(), head.get_weights())), 0
            if checkpoint is not None:
                whole_model(feature_model, head).save(checkpoint)
        else:
            waited += 1
            if waited >= config.patience:
                break
    if best[1] is not None:
        feature_model.set_weights(best[1][0])
        head.set_weights(best[1][1])
    return history


def evaluate_images(feature_model: Any, head: Any, preprocess: Callable, input_size: int,
                    data: tuple[Sequence[Path], Sequence[int]], batch_size: int = 32) -> tuple[float, float]:
    """Loss and accuracy of backbone + head on images, no augmentation, no dropout."""
    probs = predict_images(feature_model, head, preprocess, input_size, data[0], batch_size)
    if not len(probs):
        return float("nan"), float("nan")
    y = np.asarray(data[1])
    loss = float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-7, 1.0))))
    return loss, float(np.mean(probs.argmax(1) == y))


def predict_images(feature_model: Any, head: Any, preprocess: Callable, input_size: int,
                   paths: Sequence[Path], batch_size: int = 32) -> np.ndarray:
    out = [np.asarray(head(feature_model(preprocess(x), training=False), training=False))
           for x, _ in batches(paths, [0] * len(paths), input_size, batch_size)]
    return np.concatenate(out) if out else np.zeros((0, int(head.output.shape[-1])), np.float32)
