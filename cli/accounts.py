"""`dogbreed users create NAME` and `dogbreed keys create USER`: keys are shown once, stored hashed."""
from __future__ import annotations

import argparse
import getpass
import sys

from shared import accounts
from shared.db import make_engine, make_sessionmaker, session_scope
from shared.settings import Settings


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    if name == "users":
        create = sub.add_parser("create", help="create a user")
        create.add_argument("name")
        create.add_argument("--admin", action="store_true", help="may see every user's jobs")
        create.add_argument("--password", action="store_true", help="ask for a web login password")
        disable = sub.add_parser("disable", help="no login, no API key; open sessions end at once")
        disable.add_argument("name")
        enable = sub.add_parser("enable", help="allow login again (create new keys with `keys create`)")
        enable.add_argument("name")
    else:
        create = sub.add_parser("create", help="create an API key for a user (printed once)")
        create.add_argument("user")
        revoke = sub.add_parser("revoke", help="revoke every key of a user")
        revoke.add_argument("user")


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    sessions = make_sessionmaker(make_engine(settings.database_url))
    with session_scope(sessions) as session:
        if args.command == "users" and args.action in ("disable", "enable"):
            user = accounts.find_user(session, args.name)
            if user is None:
                print(f"dogbreed users: no user named {args.name!r}", file=sys.stderr)
                return 1
            if args.action == "disable":
                revoked = accounts.disable_user(session, user)
                print(f"disabled {user.name}: sessions ended, {revoked} key(s) revoked")
            else:
                accounts.enable_user(session, user)
                print(f"enabled {user.name}; new keys: dogbreed keys create {user.name}")
            return 0
        if args.command == "users":
            password = _ask_password() if args.password else None
            try:
                user = accounts.create_user(session, args.name, password, is_admin=args.admin)
            except accounts.AccountError as exc:
                print(f"dogbreed users: {exc}", file=sys.stderr)
                return 1
            print(f"created user {user.name}{' (admin)' if user.is_admin else ''}; "
                  f"next: dogbreed keys create {user.name}")
            return 0
        user = accounts.find_user(session, args.user)
        if user is None:
            print(f"dogbreed keys: no user named {args.user!r}; create it with `dogbreed users create {args.user}`",
                  file=sys.stderr)
            return 1
        if args.action == "revoke":
            print(f"revoked {accounts.revoke_keys(session, user)} key(s) of {user.name}")
            return 0
        key = accounts.create_key(session, user)
    print(key)
    print("Keep it safe: it is shown only this once. Use it as `Authorization: Bearer <key>`.", file=sys.stderr)
    return 0


def _ask_password() -> str:
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise SystemExit("dogbreed users: the passwords differ")
    return first
