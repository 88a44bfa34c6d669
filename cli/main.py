"""`dogbreed`: one command line for operators and data scientists.

Each subcommand's module is imported only when that subcommand runs, so light commands start fast
and never load TensorFlow.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from shared.settings import SettingsError

# subcommand -> (module in cli/, help)
COMMANDS: dict[str, tuple[str, str]] = {
    "up": ("cli.up", "start web, worker(s) and Flower together (creates what is missing)"),
    "db": ("cli.db", "database migrations"),
    "web": ("cli.services", "run the web app under gunicorn"),
    "worker": ("cli.services", "run one Celery worker per GPU (or one CPU worker)"),
    "flower": ("cli.services", "run Flower, the Celery monitor"),
    "users": ("cli.accounts", "create users"),
    "keys": ("cli.accounts", "create and revoke API keys"),
    "reap": ("cli.maintenance", "re-enqueue jobs that are stuck, fail those that keep failing"),
    "gc": ("cli.maintenance", "delete old jobs and their images"),
    "data": ("cli.training", "download training data sets"),
    "train": ("cli.training", "train a breed model by transfer learning"),
    "evaluate": ("cli.training", "measure a model on a data set"),
    "experiment": ("cli.training", "feature extraction vs fine-tuning as the data shrinks"),
    "models": ("cli.models", "list, publish, activate, import and learn breed models"),
    "bench": ("cli.bench.command", "measure a running deployment against the raw model"),
    "classify": ("cli.classify", "send photos or folders to a running service and print the answers"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dogbreed", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    argv = sys.argv[1:]
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, help_text) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        if name == wanted:  # only the chosen command's module is imported
            importlib.import_module(module).add_arguments(name, cmd)
    return parser


def main(argv: list[str] | None = None) -> int:
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    parser = build_parser()
    args = parser.parse_args()
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.run(args) or 0)
    except SettingsError as exc:
        print(f"dogbreed: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from sqlalchemy.exc import OperationalError, ProgrammingError

        if not isinstance(exc, (OperationalError, ProgrammingError)):
            raise
        from shared.db import redact
        from shared.settings import Settings

        url = redact(Settings.from_env().database_url)
        print(f"dogbreed: the database {url} is unreachable or not migrated ({str(exc.orig).strip()}).\n"
              "Start it or fix DOGBREED_DATABASE_URL, then run `dogbreed db upgrade`.", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
