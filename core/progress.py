"""A one-line progress bar on stderr for long inputs (only on a terminal, at most 5 redraws a second)."""
from __future__ import annotations

import sys
import time
from typing import Callable, TextIO


class Progress:
    def __init__(self, total_bytes: int | None, position: Callable[[], int], *, stream: TextIO | None = None,
                 enabled: bool | None = None, interval: float = 0.2) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.total = total_bytes
        self.position = position
        self.interval = interval
        self.started = time.monotonic()
        self._last = 0.0
        self._drawn = False

    def update(self, events: int, rejected: int = 0, *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        elapsed = max(now - self.started, 1e-9)
        rate = events / elapsed
        line = f"{events:>12,} events  {rate:>10,.0f}/s  {rejected:,} rejected"
        if self.total:
            done = min(self.position(), self.total)
            frac = done / self.total
            bar = "#" * int(frac * 24)
            line = f"[{bar:<24}] {frac:6.1%} {_mb(done)}/{_mb(self.total)} " + line
        self.stream.write("\r" + line)
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()


def _mb(n: int) -> str:
    return f"{n / 1_048_576:,.1f} MB"
