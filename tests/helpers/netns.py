"""A small network of Linux network namespaces, one per "host", on a bridge of its own.

The bridge lives in a namespace of its own too, so nothing is added to the machine's own network:
every address (10.231.0.0/24) exists only inside namespaces made here, and `close()` deletes them all.
Each host runs its commands under `ip netns exec` with a hostname of its own (`unshare --uts`), so
Celery node names differ as they would on real machines.
"""
from __future__ import annotations

import os
import signal
import subprocess
import uuid
from pathlib import Path

SUBNET = "10.231.0"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


def probe() -> str | None:
    """None when namespaces can be made here; else the reason (not root, no `ip`, a container without CAP_SYS_ADMIN)."""
    name = f"dbprobe-{uuid.uuid4().hex[:6]}"
    try:
        _ip("netns", "add", name)
    except FileNotFoundError:
        return "the `ip` command (iproute2) is not installed"
    except subprocess.CalledProcessError as exc:
        return f"`ip netns add` failed: {exc.stderr.strip() or exc}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)
    return None


class Lab:
    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex[:6]
        self.bridge_ns = f"db{self.tag}-net"
        self.hosts: dict[str, tuple[str, str]] = {}  # host -> (namespace, address)
        self.namespaces: list[str] = []
        self.processes: list[subprocess.Popen] = []

    def _add_ns(self, name: str) -> None:
        _ip("netns", "add", name)
        self.namespaces.append(name)
        _ip("-n", name, "link", "set", "lo", "up")

    def start(self) -> None:
        self._add_ns(self.bridge_ns)
        _ip("-n", self.bridge_ns, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.bridge_ns, "link", "set", "br0", "up")

    def add_host(self, host: str) -> str:
        """A namespace with one veth on the bridge; returns its address."""
        index = len(self.hosts) + 2
        ns, address = f"db{self.tag}-{host}", f"{SUBNET}.{index}"
        self._add_ns(ns)
        _ip("link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", f"p{index}", "netns", self.bridge_ns)
        _ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", self.bridge_ns, "link", "set", f"p{index}", "master", "br0")
        _ip("-n", self.bridge_ns, "link", "set", f"p{index}", "up")
        self.hosts[host] = (ns, address)
        return address

    def argv(self, host: str, argv: list[str]) -> list[str]:
        ns, _ = self.hosts[host]
        return ["ip", "netns", "exec", ns, "unshare", "--uts", "sh", "-c", f'hostname {host} && exec "$@"', "sh", *argv]

    def spawn(self, host: str, argv: list[str], env: dict[str, str], log: Path, cwd: Path | None = None) -> subprocess.Popen:
        proc = subprocess.Popen(self.argv(host, argv), env=env, cwd=cwd, stdout=open(log, "ab"),
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append(proc)
        return proc

    def run(self, host: str, argv: list[str], env: dict[str, str], timeout_s: float = 120,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(host, argv), env=env, cwd=cwd, capture_output=True, text=True,
                              timeout=timeout_s)

    def close(self) -> None:
        """Stop every process started here, then delete every namespace, whatever failed before."""
        for proc in reversed(self.processes):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for proc in reversed(self.processes):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=10)
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        self.namespaces.clear()
