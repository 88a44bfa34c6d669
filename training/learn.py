"""`dogbreed models learn`: the users' labeled dog photos -> a head that keeps the 118 ImageNet breeds
and adds theirs, evaluated, published, and (when it does not lose the 118) activated.

The loop: every dog label (shared/tables.py Label, joined with its job for the image) is read from
the image store, its features come from the feature cache as `dogbreed train` caches them, and the
head (ml/learned_head.py) starts from the ImageNet rows and the new breeds' feature means. The fit is
plain softmax regression by Adam on the cached features with an L2 pull toward that start: few steps,
so one to five photos per breed move the rows a little and cannot wipe out what ImageNet taught.

A held-back share of the labels (each breed with two photos or more gives some) is scored with the
current head ("before") and with a head fitted on the rest ("after"); the published head is then
fitted on every label. Activation is refused when "after" is worse than "before" on the held-back
photos of the 118 ImageNet breeds by more than `margin`.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from ml import model_folder
from ml.heads import FineTunedModel, ImageNetDogHead, load_trained_head
from ml.learned_head import head_model, imagenet_dog_rows, imagenet_probs, softmax, start_rows
from ml.registry import Registry
from ml.uncertainty import LEARNED_RULE
from shared.breed_names import COMMON_NAMES, breed_key
from shared.formats import ALLOWED_FORMATS
from shared.images import ImageError
from shared.model_versions import active_version
from shared.settings import Settings
from shared.stored import ImageStore
from shared.tables import Job, Label
from training.features import FeatureCache, extract, weights_identity
from training.progress import EpochLog

IMAGENET_BREEDS = [COMMON_NAMES[i] for i in sorted(COMMON_NAMES)]


class LearnError(ValueError):
    """Nothing to learn from, or a setting that cannot work; the message says what to do."""


@dataclass(frozen=True)
class LearnConfig:
    name: str
    activate: bool = False
    min_photos: int = 1  # a new breed needs this many labeled photos to be added
    holdout: float = 0.2  # share of each breed's photos (breeds with 2+) held back for the evaluation
    l2: float = 0.1  # pull toward the start rows, per weight
    steps: int = 200
    lr: float = 5e-3
    margin: float = 0.01  # the most top-1 on the held-back ImageNet-breed photos may drop before activation is refused
    seed: int = 0
    force: bool = False  # activate even when the 118 got worse
    quiet: bool = False


@dataclass
class LabeledPhoto:
    job_id: str
    sha256: str
    extension: str  # the image store's (shared.formats.ALLOWED_FORMATS)
    breed: str


@dataclass
class LearnOutcome:
    name: str
    activated: bool
    message: str
    evaluation: dict[str, Any] = field(default_factory=dict)


def labeled_dogs(session: Session) -> list[LabeledPhoto]:
    """Every image labeled as a dog of a breed; an image labeled in several jobs counts once (newest label)."""
    rows = session.execute(
        select(Label.job_id, Job.image_sha256, Job.image_format, Label.breed)
        .join(Job, Job.id == Label.job_id)
        .where(Label.kind == "dog", Label.breed.is_not(None))
        .order_by(Label.updated_at.desc(), Label.id.desc())
    ).all()
    photos: dict[str, LabeledPhoto] = {}
    for job_id, sha, fmt, breed in rows:
        photos.setdefault(sha, LabeledPhoto(job_id, sha, ALLOWED_FORMATS.get(fmt, "bin"), breed))
    return sorted(photos.values(), key=lambda p: (p.breed, p.sha256))


def fit(x: np.ndarray, y: np.ndarray, kernel: np.ndarray, bias: np.ndarray, l2: float, steps: int, lr: float,
        log: Callable[[int, dict[str, float]], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Cross-entropy on (x, y) + l2 * squared distance to the start (kernel, bias), by Adam."""
    w, b = kernel.copy(), bias.copy()
    moments = [np.zeros_like(w), np.zeros_like(w), np.zeros_like(b), np.zeros_like(b)]
    n = len(x)
    for step in range(1, steps + 1):
        probs = softmax(x @ w + b)
        loss = float(-np.log(np.maximum(probs[np.arange(n), y], 1e-12)).mean())
        probs[np.arange(n), y] -= 1
        probs /= n
        grads = (x.T @ probs + 2 * l2 * (w - kernel), probs.sum(0) + 2 * l2 * (b - bias))
        for param, grad, m, v in ((w, grads[0], moments[0], moments[1]), (b, grads[1], moments[2], moments[3])):
            m *= 0.9
            m += 0.1 * grad
            v *= 0.999
            v += 0.001 * grad * grad
            param -= lr * (m / (1 - 0.9 ** step)) / (np.sqrt(v / (1 - 0.999 ** step)) + 1e-8)
        if log is not None and (step % 50 == 0 or step == steps):
            log(step - 1, {"loss": loss})
    return w, b


@dataclass
class Start:
    """The head before fitting: its labels and rows; `photos` counts each new breed's labeled photos."""

    labels: list[str]
    kernel: np.ndarray
    bias: np.ndarray
    photos: dict[str, int]


def make_start(classifier: Any, x: np.ndarray, breeds: list[str]) -> Start:
    """ImageNet rows for the 118, feature-mean rows for every other labeled breed."""
    dog_kernel, dog_bias = imagenet_dog_rows(classifier)
    keys = {breed_key(name): i for i, name in enumerate(IMAGENET_BREEDS)}
    new = sorted({b for b in breeds if breed_key(b) not in keys})
    known = [(i, keys[breed_key(b)]) for i, b in enumerate(breeds) if breed_key(b) in keys]
    logits = x @ dog_kernel + dog_bias
    # what the ImageNet rows give a labeled photo of their own breed: the new rows' scale
    target = float(np.median([logits[i, j] for i, j in known])) if known else float(np.percentile(logits.max(1), 90))
    reference = x.mean(0)
    means = np.zeros((len(new), x.shape[1]))
    for row, name in enumerate(new):
        means[row] = x[[i for i, b in enumerate(breeds) if b == name]].mean(0)
    kernel, bias = start_rows(dog_kernel, dog_bias, means, reference, target)
    return Start(IMAGENET_BREEDS + new, kernel, bias, {name: breeds.count(name) for name in new})


def targets(labels: list[str], breeds: list[str]) -> np.ndarray:
    index = {breed_key(name): i for i, name in enumerate(labels)}
    return np.array([index[breed_key(b)] for b in breeds], np.int64)


def holdout_split(breeds: list[str], share: float, seed: int) -> tuple[list[int], list[int]]:
    """(fit, held) indices: each breed with two photos or more holds back about `share` of them, never all."""
    rng = np.random.default_rng(seed)
    fit_idx, held = [], []
    for name in sorted(set(breeds)):
        idx = [i for i, b in enumerate(breeds) if b == name]
        rng.shuffle(idx)
        k = min(int(len(idx) * share + 0.5), len(idx) - 1) if len(idx) >= 2 else 0
        held += idx[:k]
        fit_idx += idx[k:]
    return sorted(fit_idx), sorted(held)


def top1(probs: np.ndarray, labels: list[str], breeds: list[str]) -> list[bool]:
    return [breed_key(labels[int(i)]) == breed_key(b) for i, b in zip(np.argmax(probs, 1), breeds)]


def current_head(session: Session, settings: Settings, feature_dim: int) -> tuple[Any, str]:
    """The head the workers serve now, to compare with; the ImageNet dog classes when none (or when the
    active one is a fine-tuned whole model, which features alone cannot run)."""
    row = active_version(session)
    if row is None:
        return ImageNetDogHead(), "imagenet-dogs"
    folder = settings.model_dir / row.name
    try:
        head = load_trained_head(folder, row.name, feature_dim)
    except (OSError, model_folder.ModelFolderError):
        return ImageNetDogHead(), f"imagenet-dogs ({row.name} is not in {settings.model_dir})"
    if isinstance(head, FineTunedModel):
        return ImageNetDogHead(), f"imagenet-dogs ({row.name} is a whole model)"
    return head, row.name


def score(before: np.ndarray, before_labels: list[str], after: np.ndarray, after_labels: list[str],
          breeds: list[str]) -> dict[str, dict[str, Any]]:
    """Top-1 before and after on the held-back photos: all, those of the 118, those of new breeds."""
    b, a = top1(before, before_labels, breeds), top1(after, after_labels, breeds)
    known = {breed_key(n) for n in IMAGENET_BREEDS}
    groups = {"held-back labels": [True] * len(breeds),
              "of the 118 ImageNet breeds": [breed_key(x) in known for x in breeds],
              "of breeds ImageNet lacks": [breed_key(x) not in known for x in breeds]}
    out = {}
    for group, mask in groups.items():
        picked = [i for i, m in enumerate(mask) if m]
        out[group] = {"photos": len(picked),
                      "before": float(np.mean([b[i] for i in picked])) if picked else None,
                      "after": float(np.mean([a[i] for i in picked])) if picked else None}
    return out


def format_table(evaluation: dict[str, dict[str, Any]], before_name: str) -> str:
    def shown(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    width = max(len(k) for k in evaluation)
    lines = [f"{'top-1':<{width}}  photos  before ({before_name})  after"]
    for group, row in evaluation.items():
        lines.append(f"{group:<{width}}  {row['photos']:>6}  {shown(row['before']):>{9 + len(before_name)}}  "
                     f"{shown(row['after']):>5}")
    return "\n".join(lines)


def learn_version(session: Session, store: ImageStore, registry: Registry, settings: Settings,
                  config: LearnConfig) -> LearnOutcome:
    """The whole `models learn`: read the labels, fit, evaluate, publish as `config.name`, maybe activate."""
    from ml.backbone import load_backbone

    say = (lambda text: None) if config.quiet else (lambda text: print(text, flush=True))
    if registry.catalog.card(config.name) is not None:
        raise LearnError(f"version {config.name!r} is already published; choose another --name")
    photos = labeled_dogs(session)
    if not photos:
        raise LearnError("no dog photos are labeled with a breed yet; label jobs first "
                         "(PUT /api/v1/jobs/<id>/label with {\"breed\": ...}, or \"Not right?\" on a job's page)")
    backbone = load_backbone(settings.backbone, settings.backbone_weights, settings.model_dir)
    cache = FeatureCache(settings.feature_cache_dir, backbone.name, weights_identity(settings.backbone_weights),
                         backbone.input_size)

    def read(photo: LabeledPhoto) -> bytes:
        try:
            return store.read(photo.sha256, photo.extension)
        except (OSError, KeyError, LookupError) as exc:
            raise ImageError("image_gone", f"job {photo.job_id}'s image is not in the store ({exc})") from None

    say(f"{len(photos)} labeled dog photos of {len({p.breed for p in photos})} breeds")
    feats = extract(backbone, photos, cache, desc="labeled photos", read=read)
    for where, reason in feats.skipped:
        say(f"skipped {where}: {reason}")
    say(f"features: {feats.computed} computed, {feats.hits} from the cache ({cache.folder})")
    kept = [photos[i] for i in feats.kept]
    x = feats.vectors.astype(np.float64)
    breeds = [p.breed for p in kept]
    known = {breed_key(n) for n in IMAGENET_BREEDS}
    counts = {b: breeds.count(b) for b in set(breeds)}
    too_few = sorted(b for b, n in counts.items() if breed_key(b) not in known and n < config.min_photos)
    if too_few:
        say(f"not added (fewer than {config.min_photos} photos): {', '.join(too_few)}")
        mask = [b not in too_few for b in breeds]
        x, breeds = x[mask], [b for b, m in zip(breeds, mask) if m]
    if not breeds:
        raise LearnError(f"no breed has --min-photos {config.min_photos} labeled photos")
    classifier = backbone.model

    # Evaluation: fit on the rest, score the held-back share against the current head.
    fit_idx, held = holdout_split(breeds, config.holdout, config.seed)
    current, current_name = current_head(session, settings, backbone.feature_dim)
    evaluation: dict[str, dict[str, Any]] = {}
    if held:
        part = make_start(classifier, x[fit_idx], [breeds[i] for i in fit_idx])
        w, b = fit(x[fit_idx], targets(part.labels, [breeds[i] for i in fit_idx]), part.kernel, part.bias,
                   config.l2, config.steps, config.lr)
        xh, bh = x[held], [breeds[i] for i in held]
        before = current.predict(imagenet_probs(classifier, xh), xh.astype(np.float32), xh)
        evaluation = score(np.asarray(before), current.labels, softmax(xh @ w + b), part.labels, bh)
        say(format_table(evaluation, current_name))
    else:
        say("no breed has two labeled photos: nothing held back, so no before/after table")

    # The published head: every label.
    start = make_start(classifier, x, breeds)
    log = EpochLog("learn", config.steps, config.quiet)
    w, b = fit(x, targets(start.labels, breeds), start.kernel, start.bias, config.l2, config.steps, config.lr,
               log=lambda step, logs: log.epoch(step, logs))
    with tempfile.TemporaryDirectory(prefix="dogbreed-learn-") as tmp:
        folder = Path(tmp)
        head_model(w, b).save(folder / model_folder.HEAD_FILE)
        model_folder.write_json(folder / model_folder.LABELS_FILE, {"labels": start.labels})
        model_folder.write_json(folder / model_folder.METRICS_FILE, {"evaluation": evaluation})
        card = make_card(settings, backbone, config, start, len(breeds), evaluation)
        model_folder.write_json(folder / model_folder.CARD_FILE, card)
        registry.publish(folder, config.name, card, force=config.force)
    say(f"published {config.name} in {registry.folder(config.name)}: {len(start.photos)} breeds added "
        f"({', '.join(f'{k} {v}' for k, v in start.photos.items()) or 'none'}) to the 118")
    if not config.activate:
        return LearnOutcome(config.name, False, f"next: dogbreed models activate {config.name}", evaluation)
    drop = _imagenet_drop(evaluation)
    if drop is not None and drop > config.margin and not config.force:
        return LearnOutcome(config.name, False,
                            f"not activated: on the held-back photos of the 118 ImageNet breeds top-1 fell by "
                            f"{drop:.3f}, more than the margin {config.margin} (--force to activate anyway)",
                            evaluation)
    return LearnOutcome(config.name, True, registry.activate(config.name, config.force), evaluation)


def _imagenet_drop(evaluation: dict[str, dict[str, Any]]) -> float | None:
    row = evaluation.get("of the 118 ImageNet breeds")
    if not row or row["before"] is None:
        return None
    return row["before"] - row["after"]


def make_card(settings: Settings, backbone: Any, config: LearnConfig, start: Start, images: int,
              evaluation: dict[str, dict[str, Any]]) -> dict[str, Any]:
    weights = settings.backbone_weights
    overall = evaluation.get("held-back labels", {})
    return {
        "name": config.name, "backbone": backbone.name, "weights": weights,
        "weights_id": weights_identity(weights) if weights.lower() not in ("random", "none") else "random",
        "input_size": backbone.input_size, "feature_dim": backbone.feature_dim,
        "strategy": "learn", "serving": "frozen-backbone+head",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "dataset": {"name": "labels", "images": images},
        # GET /api/v1/breeds reads this: every breed, and for those learned the photos they came from
        "breeds": [{"name": n, **({"photos": start.photos[n]} if n in start.photos else {})} for n in start.labels],
        "accuracy": {"top1": overall.get("after"), "before": overall.get("before")},
        "evaluation": evaluation,
        "uncertain": LEARNED_RULE.to_card(),
        "learn": {"l2": config.l2, "steps": config.steps, "lr": config.lr, "holdout": config.holdout,
                  "min_photos": config.min_photos, "seed": config.seed},
    }
