"""Children of `dogbreed up` die with it, however it ends (SIGHUP when the terminal closes, SIGKILL).

On Linux the kernel sends each child SIGTERM when its parent dies (prctl PR_SET_PDEATHSIG), so
nothing keeps gunicorn, the workers, Flower or a redis-server we started running under PID 1
and holding the ports the next `up` needs. Elsewhere this is a no-op.
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys
from typing import Callable

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A `preexec_fn` for Popen: runs in the child between fork and exec."""
    if not sys.platform.startswith("linux"):
        return None
    parent = os.getpid()
    libc = ctypes.CDLL(None, use_errno=True)

    def arm() -> None:
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os.kill(os.getpid(), sig)

    return arm
