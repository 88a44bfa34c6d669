"""Users and API keys. A key is shown once and stored only as its SHA-256."""
from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from shared.errors import FixedCodeError
from shared.tables import ApiKey, User, utcnow

KEY_PREFIX = "dbk"
# Checked when the name is unknown, so a wrong name costs the same time as a wrong password.
_NO_SUCH_USER = generate_password_hash(secrets.token_urlsafe(16))


class AccountError(FixedCodeError, ValueError):
    code = "bad_account"


def _hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_user(session: Session, name: str, password: str | None = None, is_admin: bool = False) -> User:
    name = name.strip()
    if not name or len(name) > 80:
        raise AccountError("A user name needs 1 to 80 characters.")
    if session.scalar(select(User).where(User.name == name)):
        raise AccountError(f"A user named {name!r} already exists.")
    user = User(name=name, is_admin=is_admin, password_hash=generate_password_hash(password) if password else None)
    session.add(user)
    session.flush()
    return user


def set_password(session: Session, user: User, password: str) -> None:
    user.password_hash = generate_password_hash(password)


def find_user(session: Session, name: str) -> User | None:
    return session.scalar(select(User).where(User.name == name))


def check_login(session: Session, name: str, password: str) -> User | None:
    """The user when the password is right and the user is not disabled. Always hashes once."""
    user = find_user(session, name)
    good = check_password_hash(user.password_hash if user and user.password_hash else _NO_SUCH_USER, password)
    if user and user.password_hash and good and user.disabled_at is None:
        return user
    return None


def session_stamp(user: User) -> str:
    """Changes when the password changes or the user is disabled: a session carrying an older stamp ends."""
    return hashlib.sha256(f"{user.id}:{user.password_hash}:{user.disabled_at}".encode()).hexdigest()[:16]


def disable_user(session: Session, user: User) -> int:
    """No login, no API key, and every open session ends at its next request; returns keys revoked."""
    user.disabled_at = utcnow()
    return revoke_keys(session, user)


def enable_user(session: Session, user: User) -> None:
    user.disabled_at = None


def create_key(session: Session, user: User) -> str:
    """The plain key, for the caller to show once: `dbk_<prefix>_<secret>`."""
    prefix, secret = secrets.token_hex(4), secrets.token_urlsafe(32)
    key = f"{KEY_PREFIX}_{prefix}_{secret}"
    session.add(ApiKey(user_id=user.id, prefix=prefix, key_hash=_hash_key(key)))
    session.flush()
    return key


def user_for_key(session: Session, key: str) -> User | None:
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == _hash_key(key), ApiKey.revoked_at.is_(None)))
    user = session.get(User, row.user_id) if row else None
    return user if user is not None and user.disabled_at is None else None


def revoke_keys(session: Session, user: User) -> int:
    rows = list(session.scalars(select(ApiKey).where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))))
    for row in rows:
        row.revoked_at = utcnow()
    return len(rows)
