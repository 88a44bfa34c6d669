"""`dogbreed reap` and `dogbreed gc`: the worker runs both periodically; cron can too."""
from __future__ import annotations

import argparse

from shared.settings import Settings


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    if name == "gc":
        parser.add_argument("--days", type=int, help="keep this many days (DOGBREED_RETENTION_DAYS, default 30)")
        parser.add_argument("--dry-run", action="store_true", help="only count what would go")


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    if args.command == "reap":
        from worker.reaper import Reaper

        counts = Reaper(settings).run_once()
        print(f"re-enqueued {counts['requeued']} stuck job(s) and {counts['webhooks']} webhook(s), "
              f"failed {counts['failed']} that kept failing, canceled {counts['deadline_canceled']} past their "
              "Cancel-After deadline")
        return 0
    from shared.db import make_engine, make_sessionmaker, session_scope
    from shared.storage import open_image_store
    from worker.retention import expire

    days = settings.retention_days if args.days is None else args.days
    with session_scope(make_sessionmaker(make_engine(settings.database_url))) as session:
        gone = expire(session, open_image_store(settings), days, dry_run=args.dry_run)
        if args.dry_run:
            session.rollback()
    verb = "would delete" if args.dry_run else "deleted"
    print(f"{verb} {gone.jobs} job(s) older than {days} day(s) and {gone.images} image(s) no job uses any more")
    return 0
