"""Celery's own retry, for the faults that pass: a database or broker blip, a receiver that is down.

Backoff doubles from `first_s` up to `max_s`, and each wait is drawn at random below that (full
jitter), so workers that hit the same blip do not all come back at the same moment.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy.exc import InterfaceError, OperationalError

# Blips worth a retry; a statement the database refuses for good is not one (see result_writer).
PASSING_FAULTS: tuple[type[Exception], ...] = (OperationalError, InterfaceError, ConnectionError, TimeoutError)


def retry_options(first_s: int, max_s: int, also: tuple[type[Exception], ...] = ()) -> dict[str, Any]:
    """Task options: retry on PASSING_FAULTS (and `also`), first_s, 2*first_s ... at most max_s apart.
    Celery takes a first wait under one second as one second."""
    return {"autoretry_for": (*PASSING_FAULTS, *also), "retry_backoff": max(1, first_s),
            "retry_backoff_max": max_s, "retry_jitter": True}
