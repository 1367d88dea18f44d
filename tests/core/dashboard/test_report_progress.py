"""`wia-security report` / `compliance` on long inputs: a progress line on stderr, asked for or on a terminal."""
from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys

import pytest

import dataset
from wia_security.cli import main
from wia_security.connectors.sqlite import EventStore


@pytest.fixture
def week_file(tmp_path):
    events = dataset.week()
    path = tmp_path / "week.ndjson"
    path.write_text("".join(json.dumps(e) + "\n" for e in events) + "{broken\n")
    return path, events


def _last_bar(err: str) -> str:
    """The last progress line drawn (each redraw starts with a carriage return), without its padding."""
    bars = [b.strip() for b in re.findall(r"\r([^\r\n]*)", err) if b.strip()]
    return bars[-1] if bars else ""


@pytest.mark.parametrize("command", ["report", "compliance"])
def test_progress_on_files_counts_events_and_bytes(command, week_file, tmp_path, capsys):
    path, events = week_file
    extra = ["-o", str(tmp_path / "r.html")] if command == "report" else ["--format", "json"]
    assert main([command, str(path), "--progress", *extra]) == 1
    err = capsys.readouterr().err
    size = f"{os.path.getsize(path) / 1_048_576:,.1f} MB"
    bar = _last_bar(err)
    assert f"{len(events):,} events" in bar and "1 rejected" in bar and "100.0%" in bar and f"/{size}" in bar, err
    # the bar was cleared ("\r", blanks, "\r") before the reject line, which is not drawn into it
    assert re.search(r"\r *\rwia-security: " + re.escape(f"{path}:{len(events) + 1}: "), err), err


def test_progress_on_the_store_counts_events(tmp_path, capsys):
    events = dataset.week()[:120]
    store = EventStore(str(tmp_path / "s.db"))
    store.insert(events)
    store.close()
    assert main(["report", "--db", str(tmp_path / "s.db"), "--progress", "-o", str(tmp_path / "r.html")]) == 0
    err = capsys.readouterr().err
    assert "\r" in err and f"{len(events):,} events" in _last_bar(err)


def test_no_progress_unless_asked_or_on_a_terminal(week_file, tmp_path, capsys):
    path, _ = week_file
    assert main(["report", str(path), "-o", str(tmp_path / "r.html")]) == 1
    assert "\r" not in capsys.readouterr().err
    assert main(["report", str(path), "--no-progress", "-o", str(tmp_path / "r.html")]) == 1
    assert "\r" not in capsys.readouterr().err


def test_progress_by_default_when_stderr_is_a_terminal(week_file, tmp_path):
    path, events = week_file
    controller, terminal = pty.openpty()
    try:
        done = subprocess.run([sys.executable, "-m", "wia_security", "compliance", str(path), "--format", "json"],
                              stdout=subprocess.PIPE, stderr=terminal, timeout=120)
        os.close(terminal)
        terminal = -1
        err = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:             # EIO: the terminal's other end is closed and drained
                break
            if not chunk:
                break
            err += chunk
    finally:
        if terminal >= 0:
            os.close(terminal)
        os.close(controller)
    assert done.returncode == 1
    # a redraw ("\r" then the bar; the terminal's own "\r\n" line ends do not count)
    assert re.search(rb"\r[^\r\n]*" + f"{len(events):,} events +[0-9,]+/s".encode(), err), err
    assert json.loads(done.stdout)["inputs"]["events_read"] == len(events)
