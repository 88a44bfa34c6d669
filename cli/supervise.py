"""Start child processes, restart any that dies (with backoff, logged), stop them all on Ctrl-C."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field

from cli.lifeline import die_with_parent


@dataclass
class Service:
    """A child process that `dogbreed up` (or `worker --gpus`) starts and supervises."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)


log = logging.getLogger("dogbreed.supervise")
MAX_BACKOFF_S = 30.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
HEALTHY_AFTER_S = 60.0


@dataclass
class Child:
    service: Service
    process: subprocess.Popen | None = None
    started: float = 0.0
    restarts: int = 0
    next_start: float = 0.0


class Supervisor:
    def __init__(self, services: list[Service]) -> None:
        self.children = [Child(s) for s in services]

    def _start(self, child: Child) -> None:
        env = {**os.environ, **child.service.env, "PYTHONUNBUFFERED": "1"}
        # Own process group: Ctrl-C reaches us once, and we stop each child in order.
        child.process = subprocess.Popen(child.service.argv, env=env, start_new_session=True,
                                         preexec_fn=die_with_parent())
        child.started = time.monotonic()
        log.info("started %s (pid %d)", child.service.name, child.process.pid)

    def start_all(self) -> None:
        for child in self.children:
            self._start(child)

    def check(self) -> None:
        """Restart children that exited: 1 s, 2 s, 4 s ... up to 30 s; the count resets after a healthy minute."""
        now = time.monotonic()
        for child in self.children:
            proc = child.process
            if proc is not None and proc.poll() is None:
                if child.restarts and now - child.started > HEALTHY_AFTER_S:
                    child.restarts = 0
                continue
            if proc is not None:
                delay = min(2 ** child.restarts, MAX_BACKOFF_S)
                log.warning("%s exited with code %s; restarting in %.0f s (restart #%d)",
                            child.service.name, proc.returncode, delay, child.restarts + 1)
                child.restarts += 1
                child.next_start = now + delay
                child.process = None
            if child.process is None and now >= child.next_start:
                self._start(child)

    def stop_all(self, timeout_s: float = 20.0) -> None:
        """SIGTERM every child, SIGKILL what is left after `timeout_s`, or at once on a second
        Ctrl-C/SIGTERM: repeated signals hurry the stop, they never abort it."""
        hurry = []
        for sig in STOP_SIGNALS:
            signal.signal(sig, lambda *_: hurry.append(1))
        alive = [c.process for c in self.children if c.process and c.process.poll() is None]
        for proc in alive:
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while any(p.poll() is None for p in alive) and time.monotonic() < deadline and not hurry:
            time.sleep(0.1)
        for proc in alive:
            if proc.poll() is None:
                log.warning("pid %d did not stop %s; killing it", proc.pid, "when asked again" if hurry else "in time")
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
        log.info("all processes stopped")

    def run(self) -> int:
        for sig in STOP_SIGNALS:  # SIGHUP: the terminal closed
            signal.signal(sig, _raise_interrupt)
        self.start_all()
        try:
            while True:
                time.sleep(0.5)
                self.check()
        except KeyboardInterrupt:
            log.info("stopping ...")
        finally:
            self.stop_all()
        return 0


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _raise_interrupt(*_: object) -> None:
    raise KeyboardInterrupt
