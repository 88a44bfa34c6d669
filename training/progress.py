"""Progress a data scientist can watch: a bar for image passes, one line per epoch with time left."""
from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def bar(total: int, desc: str) -> Iterator:
    from tqdm import tqdm

    with tqdm(total=total, desc=desc, unit="img", file=sys.stderr, leave=False,
              disable=total < 64 or not sys.stderr.isatty()) as progress:
        yield progress


class EpochLog:
    """Prints `stage epoch i/n  loss .. acc .. val_loss .. val_acc ..  3.1s/epoch, <=40s left`."""

    def __init__(self, stage: str, epochs: int, quiet: bool = False) -> None:
        self.stage, self.epochs, self.quiet = stage, epochs, quiet
        self.started = time.monotonic()

    def epoch(self, index: int, logs: dict[str, float]) -> None:
        if self.quiet:
            return
        spent = time.monotonic() - self.started
        per_epoch = spent / (index + 1)
        left = per_epoch * (self.epochs - index - 1)
        shown = "  ".join(f"{k} {v:.4f}" for k, v in logs.items() if k in
                          ("loss", "accuracy", "val_loss", "val_accuracy"))
        print(f"{self.stage} epoch {index + 1}/{self.epochs}  {shown}  "
              f"{per_epoch:.1f}s/epoch, at most {left:.0f}s left (early stopping may end sooner)", flush=True)
