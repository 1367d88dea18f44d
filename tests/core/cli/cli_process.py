"""Running `python -m wia_security` as a real process: for signals, pipes and terminals, which an
in-process run cannot show."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from strategies import event_dicts


def _default_sigint() -> None:
    # A shell's background job starts with SIGINT ignored, and an ignored signal stays ignored across
    # exec: give the child the default, as an interactive shell would.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(*args: str, cwd: Path, stdin: Any = subprocess.DEVNULL, stdout: Any = subprocess.PIPE,
          stderr: Any = subprocess.PIPE) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "wia_security", *args], cwd=cwd, stdin=stdin, stdout=stdout,
                            stderr=stderr, preexec_fn=_default_sigint)


def run(*args: str, cwd: Path, input: bytes | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wia_security", *args], cwd=cwd, input=input,
                          capture_output=True, timeout=timeout, preexec_fn=_default_sigint)


def write_events(path: Path, n: int, *, seed: int = 7) -> list[str]:
    """n valid events, one per line (distinct ids), written fast: 2,000 generated, then repeated."""
    base = [(json.dumps(e), e["id"]) for e in event_dicts(min(n, 2000), seed=seed)]
    ids = []
    with path.open("w") as fh:
        for i in range(n):
            event_id = str(uuid.UUID(int=i + 1, version=4))
            ids.append(event_id)
            line, old_id = base[i % len(base)]
            fh.write(line.replace(f'"{old_id}"', f'"{event_id}"') + "\n")
    return ids


def wait_until(condition: Callable[[], bool], timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def stored_count(db: Path) -> int:
    """Rows in a SQLite store another process is writing (0 before it exists or while it is locked)."""
    import sqlite3
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute("select count(*) from events").fetchone()[0]
    except sqlite3.Error:
        return 0
