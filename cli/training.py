"""`dogbreed data fetch | train | evaluate | experiment data-size`: the data scientist's tools.

TensorFlow is imported only when a command runs, never when the parser is built.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from shared.settings import BACKBONES, Settings


def _data_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    fetch = sub.add_parser("fetch", help="download and unpack a dog data set")
    fetch.add_argument("source", choices=("udacity", "stanford"))
    fetch.add_argument("--dest", type=Path, default=Path("var/data"), help="default: var/data")
    fetch.add_argument("--url", help="another mirror of the same archive")
    fetch.add_argument("--sha256", help="refuse the download unless it has this SHA-256")


def _dataset_arguments(parser: argparse.ArgumentParser) -> None:
    """What every command that reads a data set through the backbone takes."""
    parser.add_argument("data_dir", type=Path, help="one folder per class, with or without train/ valid/ test/")
    parser.add_argument("--weights", help="backbone weights: imagenet, random, or a saved classifier file")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="feature cache (default DOGBREED_FEATURE_CACHE_DIR, var/cache/features)")


def _fitting_arguments(parser: argparse.ArgumentParser) -> None:
    """What every command that trains heads (and fine-tunes) takes."""
    _dataset_arguments(parser)
    parser.add_argument("--backbone", choices=BACKBONES, help="default: DOGBREED_BACKBONE")
    parser.add_argument("--prior", choices=("compare", "on", "off"), default="compare",
                        help="start breeds that ImageNet knows from its rows: compare both (default), on, off")
    parser.add_argument("--epochs", type=int, default=60, help="head epochs (early stopping ends sooner)")
    parser.add_argument("--patience", type=int, default=6)
    parser.add_argument("--lr", type=float, default=1e-3, help="head learning rate")
    parser.add_argument("--dropout", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    ft = parser.add_argument_group("fine-tuning (ULMFiT)")
    ft.add_argument("--ft-epochs", type=int, default=8)
    ft.add_argument("--ft-lr", type=float, default=1e-4, help="peak rate of the head; lower groups get less")
    ft.add_argument("--groups", type=int, default=4, help="cut the backbone into this many layer groups")
    ft.add_argument("--unfreeze", type=int, default=2, help="how many top groups may train")
    ft.add_argument("--batch-size", type=int, default=32)
    ft.add_argument("--no-discriminative", action="store_true", help="one learning rate for every group")
    ft.add_argument("--no-slanted", action="store_true", help="a constant rate, not the slanted triangle")
    ft.add_argument("--no-gradual", action="store_true", help="unfreeze every allowed group from the start")
    ft.add_argument("--no-augment", action="store_true", help="no flips, crops, rotations or colour changes")


def _train_arguments(parser: argparse.ArgumentParser) -> None:
    _fitting_arguments(parser)
    parser.add_argument("--strategy", choices=("feature-extraction", "fine-tune"), default="feature-extraction")
    parser.add_argument("--out", type=Path, help="model folder to write (default var/runs/<data>-<backbone>-...)")


def _evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a model folder, or a published version name")
    _dataset_arguments(parser)
    parser.add_argument("--split", choices=("test", "valid", "train", "all"), default="test")
    parser.add_argument("--out", type=Path, help="folder for report.json and report.png (default: the model's)")


def _experiment_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="EXPERIMENT")
    sub.required = True
    data_size = sub.add_parser("data-size", help="test accuracy of both strategies for several training shares")
    data_size.add_argument("--fractions", default="1,0.5,0.2,0.1", help="training shares (default 1,0.5,0.2,0.1)")
    data_size.add_argument("--out", type=Path, help="folder for data_size.json and data_size.png")
    _fitting_arguments(data_size)


PARSERS = {"data": _data_arguments, "train": _train_arguments, "evaluate": _evaluate_arguments,
           "experiment": _experiment_arguments}


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    PARSERS[name](parser)


def _train_config(args: argparse.Namespace, settings: Settings):
    from training.schedules import FineTuneConfig
    from training.train import TrainConfig

    finetune = FineTuneConfig(epochs=args.ft_epochs, lr=args.ft_lr, groups=args.groups, unfreeze=args.unfreeze,
                              batch_size=args.batch_size, discriminative=not args.no_discriminative,
                              slanted=not args.no_slanted, gradual=not args.no_gradual,
                              augment=not args.no_augment, seed=args.seed)
    return TrainConfig(data_dir=args.data_dir, backbone=args.backbone or settings.backbone,
                       weights=args.weights or settings.backbone_weights,
                       strategy=getattr(args, "strategy", "feature-extraction"), out_dir=getattr(args, "out", None),
                       cache_dir=args.cache_dir or settings.feature_cache_dir, model_dir=settings.model_dir, prior=args.prior,
                       epochs=args.epochs, patience=args.patience, lr=args.lr, dropout=args.dropout,
                       seed=args.seed, finetune=finetune)


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    settings = Settings.from_env()
    from ml.backbone import ModelUnavailable
    from ml.model_folder import ModelFolderError
    from shared.files import DownloadError
    from shared.images import ImageError
    from training.dataset import DatasetError

    try:
        if args.command == "data":
            from training.fetch import fetch

            fetch(args.source, args.dest, url=args.url, sha256=args.sha256)
        elif args.command == "train":
            from training.train import train

            train(_train_config(args, settings))
        elif args.command == "experiment":
            from training.experiment import data_size

            fractions = tuple(float(x) for x in args.fractions.split(","))
            data_size(_train_config(args, settings), fractions, out_dir=args.out)
        else:
            from training.evaluate import evaluate

            model = Path(args.model)
            if not model.is_dir() and (settings.model_dir / args.model).is_dir():
                model = settings.model_dir / args.model
            evaluate(model, args.data_dir, args.split, args.weights,
                     args.cache_dir or settings.feature_cache_dir, args.out)
        return 0
    except (DatasetError, DownloadError, ModelFolderError, ModelUnavailable, ImageError, OSError) as exc:
        print(f"dogbreed {args.command}: {exc}", file=sys.stderr)
        return 1
