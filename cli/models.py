"""`dogbreed models list|publish|activate|import`: versioned model folders and the one the workers serve.

Importing this module loads no TensorFlow: `list` and `activate` answer at once; `publish` and
`import` load Keras only to validate the folder.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from shared import model_versions as versions
from shared.db import make_engine, make_sessionmaker, session_scope
from shared.settings import Settings

IMAGENET = "imagenet-dogs"  # `activate imagenet-dogs`: back to the ImageNet classifier's own dog classes
FILES = ("head.keras", "model.keras", "labels.json", "metrics.json", "card.json", "report.json", "report.png")


class Refused(Exception):
    """A model we will not accept or activate; the message says why and how to override."""


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    sub.add_parser("list", help="the published versions; * marks the active one")
    publish = sub.add_parser("publish", help="copy a `dogbreed train` folder into DOGBREED_MODEL_DIR as a version")
    publish.add_argument("folder", type=Path)
    imp = sub.add_parser("import", help="validate and accept a model made elsewhere")
    imp.add_argument("folder", type=Path, help="holds head.keras and labels.json (card.json if it has one)")
    imp.add_argument("--backbone", help="the backbone it was trained on, when it has no card.json")
    imp.add_argument("--weights", help="that backbone's weights, when it has no card.json")
    for cmd in (publish, imp):
        cmd.add_argument("--name", help="version name (default: the folder's name)")
        cmd.add_argument("--activate", action="store_true", help="activate it at once")
        cmd.add_argument("--force", action="store_true", help="accept a backbone the service does not run")
    act = sub.add_parser("activate", help=f"make running workers serve a version (`{IMAGENET}`: no trained head)")
    act.add_argument("name")
    act.add_argument("--force", action="store_true", help="activate even when the backbone differs")


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    sessions = make_sessionmaker(make_engine(settings.database_url))
    try:
        if args.action == "list":
            with session_scope(sessions) as session:
                print(format_table(versions.list_versions(session)))
            return 0
        if args.action == "activate":
            with session_scope(sessions) as session:
                print(activate(session, settings, args.name, args.force))
            return 0
        with session_scope(sessions) as session:
            name = accept(session, settings, args.folder, args.name, imported=args.action == "import",
                          backbone=getattr(args, "backbone", None), weights=getattr(args, "weights", None),
                          force=args.force)
            print(f"published {name} in {settings.model_dir / name}")
            if args.activate:
                print(activate(session, settings, name, args.force))
            else:
                print(f"next: dogbreed models activate {name}")
        return 0
    except (Refused, versions.VersionError, ValueError) as exc:
        print(f"dogbreed models {args.action}: {exc}", file=sys.stderr)
        return 1


def format_table(rows: list[Any]) -> str:
    if not rows:
        return f"no published models; the workers answer with the ImageNet dog classes ({IMAGENET})"
    lines = [f"  {'name':<40} {'backbone':<16} {'classes':>7} {'strategy':<18} {'top-1':>6}  created"]
    for row in rows:
        card = row.card or {}
        top1 = card.get("accuracy", {}).get("top1")
        lines.append(f"{'*' if row.active else ' '} {row.name:<40} {row.backbone:<16} {row.num_classes:>7} "
                     f"{card.get('strategy', '?'):<18} {'' if top1 is None else f'{top1:.3f}':>6}  "
                     f"{row.created_at:%Y-%m-%d %H:%M}")
    return "\n".join(lines)


def compatibility(card: dict[str, Any], settings: Settings) -> tuple[list[str], list[str]]:
    """(problems, warnings) of serving a model with this card on the service's backbone."""
    problems, warnings = [], []
    if card.get("backbone") != settings.backbone:
        problems.append(f"it was trained on backbone {card.get('backbone')!r} but the service runs "
                        f"{settings.backbone!r} (DOGBREED_BACKBONE); its features would not match")
    if str(card.get("weights")) != settings.backbone_weights and not _same_file(card, settings.backbone_weights):
        warnings.append(f"it was trained with weights {card.get('weights')!r}, the service uses "
                        f"{settings.backbone_weights!r}: fine only if these are the same ImageNet weights")
    if card.get("serving") == "whole-model":
        warnings.append("it is a fine-tuned whole model (model.keras): workers run it as a second forward pass "
                        "per batch, beside the frozen backbone that detects dogs")
    return problems, warnings


def _same_file(card: dict[str, Any], weights: str) -> bool:
    path = Path(weights).expanduser()
    if not str(card.get("weights_id", "")).startswith("sha256:") or not path.is_file():
        return False
    from worker.training.fetch import sha256_of

    return card["weights_id"] == "sha256:" + sha256_of(path)


def _check(card: dict[str, Any], settings: Settings, force: bool) -> None:
    problems, warnings = compatibility(card, settings)
    for text in warnings:
        print(f"warning: {text}", file=sys.stderr)
    if problems and not force:
        raise Refused("; ".join(problems) + " (--force to accept anyway)")


def accept(session, settings: Settings, folder: Path, name: str | None, imported: bool = False,
           backbone: str | None = None, weights: str | None = None, force: bool = False) -> str:
    """Validate a model folder, copy it to DOGBREED_MODEL_DIR/<name> and record the version."""
    from worker.models.backbone import load_backbone
    from worker.training.artifacts import CARD_FILE, check_folder, read_card, write_json

    folder = Path(folder)
    card = read_card(folder)
    if not card:
        if not imported:
            raise Refused(f"{folder} has no card.json; use `dogbreed models import` for a model made elsewhere")
        card = {"backbone": backbone or settings.backbone, "weights": weights or settings.backbone_weights,
                "strategy": "unknown"}
    name = versions.check_name(name or card.get("name") or folder.name)
    if versions.get_version(session, name) is not None:
        raise versions.VersionError(f"version {name!r} is already published; choose another --name")
    _check(card, settings, force)
    shape = load_backbone(card["backbone"], "random")  # architecture only: feature size and input size
    facts = check_folder(folder, shape.feature_dim, shape.input_size)
    target = settings.model_dir / name
    if target.exists():
        raise Refused(f"{target} already exists but is not a published version; move it away first")
    card = {**card, "name": name, "num_classes": facts["num_classes"],
            "published": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **({"source": str(folder.resolve())} if imported else {})}
    target.mkdir(parents=True)
    try:
        for file in FILES:
            if (folder / file).is_file():
                shutil.copy2(folder / file, target / file)
        write_json(target / CARD_FILE, card)
        versions.register(session, name, card["backbone"], str(card.get("weights", "")), facts["num_classes"], card)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    return name


def activate(session, settings: Settings, name: str, force: bool = False) -> str:
    if name == IMAGENET:
        versions.deactivate_all(session)
        return "no trained head is active: workers answer with the ImageNet dog classes"
    row = versions.get_version(session, name)
    if row is None:
        raise versions.VersionError(f"no version named {name!r}; see `dogbreed models list`")
    if not (settings.model_dir / name / "head.keras").is_file():
        raise Refused(f"{settings.model_dir / name} has no head.keras; is DOGBREED_MODEL_DIR the one it was published to?")
    _check(row.card or {"backbone": row.backbone, "weights": row.weights}, settings, force)
    versions.activate(session, name)
    return (f"{name} is active; running workers switch at their next batch "
            f"(their results name model_version {json.dumps(name)})")
