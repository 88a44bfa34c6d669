"""ULMFiT's fine-tuning knobs as plain functions: slanted triangular rates, discriminative rates, gradual unfreezing."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FineTuneConfig:
    """Each ULMFiT trick can be switched off alone, to measure what it buys."""

    epochs: int = 8
    lr: float = 1e-4  # peak rate of the head; lower groups get lr / decay**depth
    groups: int = 4  # the backbone's weighted layers, cut into this many contiguous groups
    unfreeze: int = 2  # how many of the top groups may train at all
    discriminative: bool = True
    decay: float = 2.6
    slanted: bool = True
    cut_frac: float = 0.1
    ratio: float = 32.0
    gradual: bool = True
    augment: bool = True
    patience: int = 3
    batch_size: int = 32
    seed: int = 0


def slanted_triangular(step: int, total: int, peak: float, cut_frac: float = 0.1, ratio: float = 32.0) -> float:
    """Howard & Ruder (2018), eq. 3: a short linear warm-up to `peak`, then a long linear decay."""
    cut = max(1, int(total * cut_frac))
    if step < cut:
        p = step / cut
    else:
        p = 1 - (step - cut) / max(1, total - cut)
    return peak * (1 + max(0.0, p) * (ratio - 1)) / ratio


def group_rates(peak: float, active: int, config: FineTuneConfig) -> list[float]:
    """Rate of each active group, head first (depth 0), one `decay` step lower per group down."""
    return [peak / (config.decay ** depth if config.discriminative else 1.0) for depth in range(active)]


def unfrozen_groups(epoch: int, config: FineTuneConfig) -> int:
    """Backbone groups that train in this epoch: one more per epoch when gradual, else all at once."""
    return min(epoch, config.unfreeze) if config.gradual else config.unfreeze


def layer_groups(feature_model: Any, count: int) -> list[list[Any]]:
    """The layers with trainable weights, bottom to top, cut into `count` contiguous groups.

    Batch-norm layers are left out: they stay frozen and in inference mode, so a small batch
    cannot wreck the statistics the backbone learnt on ImageNet.
    """
    import keras

    layers = [layer for layer in feature_model.layers
              if layer.weights and not isinstance(layer, (keras.layers.BatchNormalization, keras.Model))]
    count = max(1, min(count, len(layers)))
    size, extra = divmod(len(layers), count)
    groups, start = [], 0
    for g in range(count):
        end = start + size + (1 if g < extra else 0)
        groups.append(layers[start:end])
        start = end
    return groups
