"""Published breed-model versions: which exist and which one the workers serve. The caller owns the session."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared.breed_names import COMMON_NAMES, IMAGENET_HEAD, readable
from shared.errors import FixedCodeError
from shared.tables import ModelVersion, utcnow

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class VersionError(FixedCodeError, ValueError):
    """A version name that is taken, unknown or not a safe folder name."""

    code = "bad_version"


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name) or ".." in name:
        raise VersionError(f"{name!r} is not a usable version name: letters, digits, '.', '_' and '-', up to 100")
    return name


def list_versions(session: Session) -> list[ModelVersion]:
    return list(session.scalars(select(ModelVersion).order_by(ModelVersion.created_at, ModelVersion.id)))


def get_version(session: Session, name: str) -> ModelVersion | None:
    return session.scalars(select(ModelVersion).where(ModelVersion.name == name)).first()


def active_version(session: Session) -> ModelVersion | None:
    return session.scalars(select(ModelVersion).where(ModelVersion.active.is_(True))).first()


def register(session: Session, name: str, backbone: str, weights: str, num_classes: int,
             card: dict[str, Any]) -> ModelVersion:
    """Record a version whose folder is already in place under DOGBREED_MODEL_DIR."""
    check_name(name)
    if get_version(session, name) is not None:
        raise VersionError(f"version {name!r} is already published; choose another --name")
    row = ModelVersion(name=name, backbone=backbone, weights=weights, num_classes=num_classes, card=card)
    session.add(row)
    session.flush()
    return row


def activate(session: Session, name: str) -> ModelVersion:
    """Make `name` the only active version; workers switch at their next batch."""
    row = get_version(session, name)
    if row is None:
        raise VersionError(f"no version named {name!r}; see `dogbreed models list`")
    session.execute(update(ModelVersion).where(ModelVersion.id != row.id).values(active=False))
    row.active, row.activated_at = True, utcnow()
    session.flush()
    return row


def deactivate_all(session: Session) -> None:
    """Back to the ImageNet dog classes, the answer a fresh install gives."""
    session.execute(update(ModelVersion).values(active=False))


class VersionCatalog:
    """The database's record of versions, as ml.registry.Registry wants it; the caller owns the session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def card(self, name: str) -> dict[str, Any] | None:
        row = get_version(self.session, name)
        if row is None:
            return None
        return row.card or {"backbone": row.backbone, "weights": row.weights}

    def record(self, name: str, card: dict[str, Any]) -> None:
        register(self.session, name, card["backbone"], str(card.get("weights", "")), card["num_classes"], card)

    def activate(self, name: str | None) -> None:
        if name is None:
            deactivate_all(self.session)
        else:
            activate(self.session, name)


WHOLE_MODEL = "whole-model"  # a card's "serving" for a fine-tuned whole network (ml.model_folder's spelling)


def served_breeds(session: Session, model_dir: Path) -> dict[str, Any]:
    """The breeds the active model can answer, as GET /api/v1/breeds shows them.

    No active version: the 118 ImageNet dog classes under their common names. A version's card lists
    its breeds (`models publish` records them, `models learn` with the photos each new breed was
    learned from); a version published before cards did is read from its folder's labels.json."""
    row = active_version(session)
    if row is None:
        return {"model_version": None, "head": IMAGENET_HEAD,
                "breeds": [{"name": name} for name in COMMON_NAMES.values()]}
    card = row.card or {}
    breeds = [{"name": str(b["name"]), **({"photos": int(b["photos"])} if b.get("photos") is not None else {})}
              for b in card.get("breeds") or [] if isinstance(b, dict) and b.get("name")]
    if not breeds:
        try:
            listed = json.loads((model_dir / row.name / "labels.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            listed = []
        listed = listed.get("labels", []) if isinstance(listed, dict) else listed
        breeds = [{"name": readable(x)} for x in listed if isinstance(x, str)]
    head = "fine-tuned" if card.get("serving") == WHOLE_MODEL else "trained"
    return {"model_version": row.name, "head": f"{head}:{row.name}", "breeds": breeds}
