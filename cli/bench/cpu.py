"""CPU time: the worker processes' (read from /proc), and the CPU floor (decode, resize, faces on all cores).

The floor is what this machine's cores can do for the same photos with no service at all: each
photo decoded and capped exactly as the worker does (shared.images.load_rgb with the face
detector's size cap), resized to the model's input (ml.preprocess.to_input) and face-checked by the
service's detector, in a process pool sized to os.cpu_count(). With a near-free model the service
can do no better, so e2e / floor is what the plumbing leaves of the machine.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

PROC = Path("/proc")
TICK_S = 1.0 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01


# ---- the worker processes' CPU time ---------------------------------------------------------------
def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user+sys seconds of the process and its reaped children), None once it is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) ": state is fields[0]
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return int(fields[1]), (utime + stime + cutime + cstime) * TICK_S


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            found = _stat(int(entry.name))
            if found:
                tree.setdefault(found[0], []).append(int(entry.name))
    return tree


def cpu_seconds(pids: list[int]) -> float:
    """User+sys seconds of these processes and all their descendants (live ones, plus what the dead
    ones left in their parent's reaped-children times), so a delta over a phase counts every thread
    and every helper process a worker runs."""
    tree = _children()
    total, todo, seen = 0.0, list(pids), set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        found = _stat(pid)
        if found:
            total += found[1]
            todo.extend(tree.get(pid, []))
    return total


def _argv(pid: int) -> list[str]:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def find_workers(queue: str) -> list[int]:
    """This machine's `dogbreed worker` processes consuming `queue` (the names on their --queues).

    Read from /proc, not a Celery broadcast: node names (cpu@host) repeat across stacks that share a
    broker, the queue of a bench stack does not."""
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        argv = _argv(int(entry.name))
        if "worker" in argv and "--queues" in argv and argv.index("--queues") + 1 < len(argv):
            if queue in argv[argv.index("--queues") + 1].split(","):
                found.append(int(entry.name))
    # a process started by another one found here (a supervisor's child) is already counted with it
    parents = {pid: (_stat(pid) or (0, 0.0))[0] for pid in found}
    return sorted(pid for pid in found if parents[pid] not in found)


# ---- the CPU floor -------------------------------------------------------------------------------
@dataclass
class Floor:
    images_per_s: float  # wall clock, all cores
    cpu_ms_per_image: float  # user+sys in the pool's processes, per image
    processes: int


_detector: Any = None
_size = 0
_max_pixels = 0


def _init(kind: str, face_model: str | None, model_dir: str, size: int, max_pixels: int) -> None:
    global _detector, _size, _max_pixels
    import cv2

    from ml.faces import load_face_detector
    from shared.files import download

    cv2.setNumThreads(1)  # one process per core: OpenCV's own threads would only oversubscribe them
    _detector = load_face_detector(kind, face_model, Path(model_dir), download)
    _size, _max_pixels = size, max_pixels


def _work(chunk: list[bytes]) -> float:
    """Decode, resize and face-check a chunk; the CPU seconds it took in this process."""
    from ml.faces import DECODE_MAX_SIDE
    from ml.preprocess import to_input
    from shared.images import load_rgb

    start = time.process_time()
    for data in chunk:
        rgb = load_rgb(data, _max_pixels, max_side=DECODE_MAX_SIDE)
        to_input(rgb, _size)
        _detector.detect(rgb)
    return time.process_time() - start


def floor(images: list[bytes], input_size: int, faces_kind: str, face_model: str | None, model_dir: Path,
          max_pixels: int, processes: int | None = None, chunk: int = 4) -> Floor:
    """The same photos through decode + resize + faces on every core, no service (after a warm-up)."""
    processes = processes or os.cpu_count() or 1
    chunks = [images[i:i + chunk] for i in range(0, len(images), chunk)]
    # spawn, not fork: the bench process may hold TensorFlow's threads by now
    with ProcessPoolExecutor(processes, mp_context=get_context("spawn"), initializer=_init,
                             initargs=(faces_kind, face_model, str(model_dir), input_size, max_pixels)) as pool:
        list(pool.map(_work, [images[i % len(images):i % len(images) + 1] for i in range(2 * processes)]))
        start = time.perf_counter()
        cpu = sum(pool.map(_work, chunks))
        wall = time.perf_counter() - start
    return Floor(len(images) / wall, cpu * 1000 / len(images), processes)
