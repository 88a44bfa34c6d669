"""Files only this user may read: var/, the secret key, the local API key, the SQLite database."""
from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path


def private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)


def write_private(path: Path, text: str) -> None:
    """Created with mode 0600 from the first byte, never readable by others in between."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    path.chmod(0o600)


def secret_key(var_dir: Path, name: str = "secret_key", webhook: bool = False) -> str:
    """A random secret generated once and kept in var/: the key that signs sessions (every web process,
    and every restart, must share it, or logins and forms break at random), or the webhook signing key."""
    path = var_dir / name
    if not path.exists():
        private_dir(var_dir)
        # a webhook secret in the Standard Webhooks form, whsec_<base64 of the key>, that its libraries take as is
        write_private(path, "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode() if webhook else secrets.token_hex(32))
    return path.read_text().strip()
