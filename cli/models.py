"""`dogbreed models list|publish|activate|import|learn`: versioned model folders and the one the workers serve.

Importing this module loads no TensorFlow: `list` and `activate` answer at once; `publish` and
`import` load Keras only to validate the folder; `learn` (training/learn.py) runs the backbone.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ml import model_folder
from ml.registry import IMAGENET, Refused, Registry
from shared import model_versions as versions
from shared.db import make_engine, make_sessionmaker, session_scope
from shared.settings import Settings


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
    learn = sub.add_parser("learn", help="learn the labeled breeds into a head that keeps the 118 ImageNet ones, "
                                         "and publish it")
    learn.add_argument("--name", required=True, help="the new version's name")
    learn.add_argument("--activate", action="store_true",
                       help="activate it, unless it is worse on the 118 ImageNet breeds by more than --margin")
    learn.add_argument("--min-photos", type=int, default=1, help="labeled photos a new breed needs (default 1)")
    learn.add_argument("--margin", type=float, default=0.01,
                       help="the most top-1 on held-back ImageNet-breed photos may fall (default 0.01)")
    learn.add_argument("--holdout", type=float, default=0.2, help="share of labels held back to evaluate (0.2)")
    learn.add_argument("--steps", type=int, default=200, help="fitting steps (default 200)")
    learn.add_argument("--seed", type=int, default=0)
    learn.add_argument("--force", action="store_true", help="activate even when the 118 got worse")
    act = sub.add_parser("activate", help=f"make running workers serve a version (`{IMAGENET}`: no trained head)")
    act.add_argument("name")
    act.add_argument("--force", action="store_true", help="activate even when the backbone differs")


def registry(session, settings: Settings) -> Registry:
    from shared.s3 import open_model_store

    return Registry(settings.model_dir, versions.VersionCatalog(session), settings.backbone,
                    settings.backbone_weights, warn=lambda text: print(f"warning: {text}", file=sys.stderr),
                    remote=open_model_store(settings))


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    sessions = make_sessionmaker(make_engine(settings.database_url))
    try:
        with session_scope(sessions) as session:
            if args.action == "list":
                print(format_table(versions.list_versions(session)))
                return 0
            if args.action == "learn":
                return _learn(session, settings, args)
            models = registry(session, settings)
            if args.action == "activate":
                print(models.activate(args.name, args.force))
                return 0
            name = publish(models, args)
            print(f"published {name} in {models.folder(name)}"
                  + (f" and {models.remote.where(name)}" if models.remote else ""))
            print(models.activate(name, args.force) if args.activate else f"next: dogbreed models activate {name}")
        return 0
    except (Refused, versions.VersionError, model_folder.ModelFolderError, ValueError) as exc:
        print(f"dogbreed models {args.action}: {exc}", file=sys.stderr)
        return 1


def learn(session, settings: Settings, config) -> Any:
    """Learn the labeled breeds as version `config.name` (training.learn.LearnConfig); returns the
    LearnOutcome (its .name is the published version). For scripts and the end-to-end test."""
    from shared.storage import open_image_store
    from training.learn import learn_version

    return learn_version(session, open_image_store(settings), registry(session, settings), settings, config)


def _learn(session, settings: Settings, args: argparse.Namespace) -> int:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from training.learn import LearnConfig, LearnError

    config = LearnConfig(name=versions.check_name(args.name), activate=args.activate, min_photos=args.min_photos,
                         holdout=args.holdout, steps=args.steps, margin=args.margin, seed=args.seed,
                         force=args.force)
    try:
        outcome = learn(session, settings, config)
    except LearnError as exc:
        print(f"dogbreed models learn: {exc}", file=sys.stderr)
        return 1
    print(outcome.message, file=sys.stdout if outcome.activated or not args.activate else sys.stderr)
    return 0 if outcome.activated or not args.activate else 1


def publish(models: Registry, args: argparse.Namespace) -> str:
    """`publish` takes a `dogbreed train` folder with its card; `import` makes a card for one made elsewhere."""
    folder, imported = Path(args.folder), args.action == "import"
    card = model_folder.read_card(folder)
    if not card:
        if not imported:
            raise Refused(f"{folder} has no card.json; use `dogbreed models import` for a model made elsewhere")
        card = {"backbone": args.backbone or models.backbone, "weights": args.weights or models.weights,
                "strategy": "unknown"}
    name = versions.check_name(args.name or card.get("name") or folder.name)
    return models.publish(folder, name, card, force=args.force, source=folder if imported else None)


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
