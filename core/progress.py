"""A one-line progress bar on stderr for long inputs: only on a terminal, at most 5 redraws a second,
never wider than the terminal (a wrapped line would print a new line at every redraw)."""
from __future__ import annotations

import os
import sys
import time
from typing import Callable, TextIO

#: Used when the stream cannot tell its width.
DEFAULT_COLUMNS = 80


class Progress:
    def __init__(self, total_bytes: int | None, position: Callable[[], int], *, stream: TextIO | None = None,
                 enabled: bool | None = None, interval: float = 0.2) -> None:
        self.stream = stream or sys.stderr
        self.enabled = _isatty(self.stream) if enabled is None else enabled
        self.total = total_bytes
        self.position = position
        self.interval = interval
        self.started = time.monotonic()
        self._last = 0.0
        self._drawn = 0                 # width of the line on screen now (0: none)

    def update(self, events: int, rejected: int = 0, *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        elapsed = max(now - self.started, 1e-9)
        rate = events / elapsed
        counts = f"{events:,} events  {rate:,.0f}/s" + (f"  {rejected:,} rejected" if rejected else "")
        width = _columns(self.stream) - 1          # the last column would wrap on some terminals
        line = counts
        if self.total:
            done = min(self.position(), self.total)
            frac = done / self.total
            sizes = f" {_mb(done)}/{_mb(self.total)}"
            room = width - len(counts) - len(sizes) - 12       # "[" bar "] 100.0%  "
            bar_width = max(0, min(24, room))
            bar = f"[{'#' * int(frac * bar_width):<{bar_width}}] " if bar_width >= 5 else ""
            line = f"{bar}{frac:6.1%}{sizes}  {counts}"
            if len(line) > width:
                line = f"{frac:6.1%}  {counts}"
        line = line[:width]
        # Pad over what a longer previous line left on screen.
        self.stream.write("\r" + line.ljust(self._drawn))
        self.stream.flush()
        self._drawn = len(line)

    def clear(self) -> None:
        """Erase the bar so a message can be printed on a clean line (the next update redraws it)."""
        if self._drawn:
            self.stream.write("\r" + " " * self._drawn + "\r")
            self.stream.flush()
            self._drawn = 0
            self._last = 0.0

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = 0


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):          # no stream (pythonw) or a closed one
        return False


def _columns(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns or DEFAULT_COLUMNS
    except (OSError, ValueError, AttributeError):
        try:
            return int(os.environ.get("COLUMNS", "")) or DEFAULT_COLUMNS
        except ValueError:
            return DEFAULT_COLUMNS


def _mb(n: int) -> str:
    return f"{n / 1_048_576:,.1f} MB"
