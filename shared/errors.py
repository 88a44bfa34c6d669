"""The one base of the project's error types: a stable `code` for programs, a `message` for people.

Every room may import this module, ml/ included, so it imports nothing of ours. An API answer
shows `code` and `message` with `status`; a command prints `message`. One argument order,
(code, message, status), for every error type that carries a code.
"""
from __future__ import annotations

from typing import Any


class DogbreedError(Exception):
    """`code` is None and `status` None only where there is none to give (the client's "no service")."""

    code: str | None = None
    status: int | None = 500

    def __init__(self, code: str | None, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code, self.message = code, message
        if status is not None:
            self.status = status

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception pickles as cls(*args), which a (code, message) constructor cannot take back.
        return type(self).__new__, (type(self), *self.args), self.__dict__


class FixedCodeError(DogbreedError):
    """An error type with a single code, its class's: raised with the message alone."""

    code: str | None = "error"

    def __init__(self, message: str) -> None:
        super().__init__(type(self).code, message)
