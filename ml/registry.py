"""The model store: published breed-model versions as folders under DOGBREED_MODEL_DIR, and the
rules for accepting and activating one. `dogbreed models` and the worker both go through here.

Which versions exist and which is active is recorded by a Catalog (the database's, in
shared/model_versions.py): this module knows files and rules, not tables. Where workers on other
hosts fetch a version from (an S3 bucket, shared/s3.py) is a Remote: this module knows no storage.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Protocol

from ml import model_folder
from ml.model_folder import CARD_FILE, FILES, HEAD_FILE, WHOLE_MODEL
from shared.breed_names import IMAGENET_HEAD, readable
from shared.files import sha256_file

IMAGENET = IMAGENET_HEAD  # `activate imagenet-dogs`: back to the ImageNet classifier's own dog classes


class Refused(Exception):
    """A model we will not accept or activate; the message says why and how to override."""


class Catalog(Protocol):
    def card(self, name: str) -> dict[str, Any] | None:
        """The card of a recorded version, None when there is none by that name."""

    def record(self, name: str, card: dict[str, Any]) -> None: ...

    def activate(self, name: str | None) -> None:
        """Make `name` the one version served; None: no trained head."""


class Remote(Protocol):
    """A shared store of published versions that workers on other hosts download from."""

    def upload(self, folder: Path, name: str) -> str:
        """Upload the folder's files as version `name`; returns where it now is."""

    def has(self, name: str) -> bool: ...


@dataclass
class Registry:
    model_dir: Path
    catalog: Catalog
    backbone: str  # what the service runs (DOGBREED_BACKBONE, DOGBREED_BACKBONE_WEIGHTS)
    weights: str
    warn: Callable[[str], None] = lambda text: None
    remote: Remote | None = None  # also upload here on publish (DOGBREED_STORAGE_URL=s3://...)

    def folder(self, name: str) -> Path:
        return self.model_dir / name

    def compatibility(self, card: dict[str, Any]) -> tuple[list[str], list[str]]:
        """(problems, warnings) of serving a model with this card on the service's backbone."""
        problems, warnings = [], []
        if card.get("backbone") != self.backbone:
            problems.append(f"it was trained on backbone {card.get('backbone')!r} but the service runs "
                            f"{self.backbone!r} (DOGBREED_BACKBONE); its features would not match")
        if str(card.get("weights")) != self.weights and not _same_file(card, self.weights):
            warnings.append(f"it was trained with weights {card.get('weights')!r}, the service uses "
                            f"{self.weights!r}: fine only if these are the same ImageNet weights")
        if card.get("serving") == WHOLE_MODEL:
            warnings.append("it is a fine-tuned whole model (model.keras): workers run it as a second forward "
                            "pass per batch, beside the frozen backbone that detects dogs")
        return problems, warnings

    def _check(self, card: dict[str, Any], force: bool) -> None:
        problems, warnings = self.compatibility(card)
        for text in warnings:
            self.warn(text)
        if problems and not force:
            raise Refused("; ".join(problems) + " (--force to accept anyway)")

    def publish(self, folder: Path, name: str, card: dict[str, Any], force: bool = False,
                source: Path | None = None) -> str:
        """Check a model folder, copy it in as version `name` and record it; nothing half-published."""
        from ml.backbone import load_backbone

        if self.catalog.card(name) is not None:
            raise Refused(f"version {name!r} is already published; choose another --name")
        self._check(card, force)
        shape = load_backbone(card["backbone"], "random")  # architecture only: feature and input size
        facts = model_folder.check_folder(folder, shape.feature_dim, shape.input_size)
        target = self.folder(name)
        if target.exists():
            raise Refused(f"{target} already exists but is not a published version; move it away first")
        # The breeds it answers, as GET /api/v1/breeds lists them (`models learn` writes its own, with photo counts).
        breeds = card.get("breeds") or [{"name": readable(label)} for label in facts["labels"]]
        card = {**card, "name": name, "num_classes": facts["num_classes"], "breeds": breeds,
                "published": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                **({"source": str(source.resolve())} if source else {})}
        target.mkdir(parents=True)
        try:
            for file in FILES:
                if (folder / file).is_file():
                    shutil.copy2(folder / file, target / file)
            model_folder.write_json(target / CARD_FILE, card)
            if self.remote is not None:  # uploaded before it is recorded: no worker is told of a missing version
                self.remote.upload(target, name)
            self.catalog.record(name, card)
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
        return name

    def activate(self, name: str, force: bool = False) -> str:
        if name == IMAGENET:
            self.catalog.activate(None)
            return "no trained head is active: workers answer with the ImageNet dog classes"
        card = self.catalog.card(name)
        if card is None:
            raise Refused(f"no version named {name!r}; see `dogbreed models list`")
        if not (self.folder(name) / HEAD_FILE).is_file() and not (self.remote and self.remote.has(name)):
            raise Refused(f"{self.folder(name)} has no {HEAD_FILE}; is DOGBREED_MODEL_DIR the one it was published to?")
        self._check(card, force)
        self.catalog.activate(name)
        return (f"{name} is active; running workers switch at their next batch "
                f"(their results name model_version {json.dumps(name)})")


def _same_file(card: dict[str, Any], weights: str) -> bool:
    path = Path(weights).expanduser()
    if not str(card.get("weights_id", "")).startswith("sha256:") or not path.is_file():
        return False
    return card["weights_id"] == "sha256:" + sha256_file(path)
