"""`dogbreed db upgrade`: apply Alembic migrations to DOGBREED_DATABASE_URL (also used by `up` and the tests)."""
from __future__ import annotations

import argparse
from pathlib import Path

from alembic import command
from alembic.config import Config

import migrations
from shared.db import redact
from shared.settings import Settings


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="db_command", metavar="ACTION")
    sub.required = True
    up = sub.add_parser("upgrade", help="apply migrations up to a revision (default: head)")
    up.add_argument("revision", nargs="?", default="head")


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    upgrade(settings.database_url, args.revision)
    print(f"database is at {args.revision}: {redact(settings.database_url)}")
    return 0


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(migrations.__file__).parent))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def migration_heads(database_url: str) -> list[str]:
    from alembic.script import ScriptDirectory

    return list(ScriptDirectory.from_config(alembic_config(database_url)).get_heads())
