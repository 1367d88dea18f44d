"""The progress bar on a real terminal (a pty): drawn on stderr when it is a terminal, never wider than the
terminal, never mixed into documents on the same terminal, absent when stderr is a file or pipe."""
from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from cli_process import write_events

COLUMNS = 80
BAR = re.compile(rb"\r(\[[# ]*\] )? *\d+\.\d%")          # a redraw of the bar


@pytest.fixture(scope="module")
def events(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("progress") / "events.ndjson"
    write_events(path, 20_000)
    return path


def on_terminal(args: list[str], cwd: Path, *, stdout_too: bool = False) -> tuple[int, bytes]:
    """Run with stderr (and stdout when `stdout_too`) on a pty COLUMNS wide; what the terminal shows."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, COLUMNS, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "wia_security", *args], cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=slave if stdout_too else subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:                          # EIO: the child closed its end
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    return proc.wait(timeout=120), shown


def screen_lines(shown: bytes) -> list[bytes]:
    """Every stretch of text between carriage returns and newlines: what one redraw puts on a row."""
    return shown.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")


@pytest.mark.parametrize("command", [["forward", "--to", "sqlite:///s.db"], ["convert", "--to", "ocsf", "-o", "o.json"],
                                     ["validate", "-q"]])    # validate: verdicts to a file, as `> verdicts.txt`
def test_progress_on_a_terminal_fits_its_width(events, tmp_path, command):
    code, shown = on_terminal([*command, str(events)], tmp_path)
    assert code == 0, shown
    assert BAR.search(shown) and b"100.0%" in shown and b"20,000 events" in shown   # the last redraw: the end
    assert shown.count(b"\r") > 1                                  # redrawn in place, more than once
    widest = max(len(line) for line in screen_lines(shown))
    assert widest < COLUMNS, widest                                 # a wider line wraps: a new row per redraw


def test_no_progress_when_stderr_is_not_a_terminal(events, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "wia_security", "forward", "--to", "sqlite:///s.db", str(events)],
                          cwd=tmp_path, capture_output=True, timeout=120)
    assert proc.returncode == 0
    assert b"\r" not in proc.stderr and not BAR.search(proc.stderr)


def test_no_progress_over_documents_written_to_the_same_terminal(tmp_path, events):
    small = tmp_path / "small.ndjson"
    with events.open() as fh:
        small.write_text("".join(fh.readline() for _ in range(300)))
    code, shown = on_terminal(["convert", "--to", "ecs", str(small)], tmp_path, stdout_too=True)
    assert code == 0
    assert not BAR.search(shown)                                   # documents only, no bar between them
    assert shown.count(b"\n") >= 300


def test_progress_can_be_turned_off_on_a_terminal(events, tmp_path):
    code, shown = on_terminal(["forward", "--no-progress", "--to", "sqlite:///s.db", str(events)], tmp_path)
    assert code == 0 and not BAR.search(shown)


def test_validate_keeps_verdicts_and_bar_apart_on_one_terminal(events, tmp_path):
    small = tmp_path / "small.ndjson"
    with events.open() as fh:
        small.write_text("".join(fh.readline() for _ in range(300)))
    code, shown = on_terminal(["validate", str(small)], tmp_path, stdout_too=True)
    assert code == 0
    assert not BAR.search(shown) and shown.count(b": valid alert") + shown.count(b": valid ") >= 300


@pytest.mark.parametrize("command", [["forward", "--to", "-"], ["forward", "--config", "c.toml"]])
def test_no_progress_over_events_forwarded_to_the_same_terminal(tmp_path, events, command):
    """forward drew its bar between the events it wrote to the terminal (--to -, or a --config destination "-")."""
    small = tmp_path / "small.ndjson"
    with events.open() as fh:
        small.write_text("".join(fh.readline() for _ in range(3000)))
    (tmp_path / "c.toml").write_text('[destinations.out]\nurl = "-"\n')
    code, shown = on_terminal([*command, str(small)], tmp_path, stdout_too=True)
    assert code == 0
    assert not BAR.search(shown)
    assert shown.count(b'{"') >= 3000
