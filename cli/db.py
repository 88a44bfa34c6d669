"""`dogbreed db upgrade`: apply Alembic migrations to DOGBREED_DATABASE_URL."""
from __future__ import annotations

import argparse

from shared.settings import Settings


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="db_command", metavar="ACTION")
    sub.required = True
    up = sub.add_parser("upgrade", help="apply migrations up to a revision (default: head)")
    up.add_argument("revision", nargs="?", default="head")


def run(args: argparse.Namespace) -> int:
    from shared import migrate

    settings = Settings.from_env()
    migrate.upgrade(settings.database_url, args.revision)
    print(f"database is at {args.revision}: {redact(settings.database_url)}")
    return 0


def redact(url: str) -> str:
    """Hide a password in a database or broker URL before printing it."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]
