"""`report` / `compliance` on a store a writer holds or left mid-transaction: refused with the reason, never
read as immutable. Immutable means SQLite takes no lock and trusts the file not to change; it is right only
for a WAL store whose -shm cannot be made (a read-only folder). Taken for any failed open, it read a store
locked by a writer, or one with the hot -journal of a crashed writer, while its pages were half written:
'database disk image is malformed' for a sound store, or the uncommitted rows counted."""
from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import dataset
from wia_security.cli import main
from wia_security.connectors.sqlite import EventStore

# A writer in rollback-journal mode (a store copied with the sqlite3 shell's .backup, or set so by hand)
# inserts rows through a tiny page cache, so uncommitted pages are spilled into the store file itself
# with their originals in the -journal; then it either holds the lock (argv[2] == "hold") or dies.
_WRITER = """
import os, signal, sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA cache_size=2")
db.execute("BEGIN EXCLUSIVE")
row = db.execute("SELECT type, ts_ms, timestamp, severity, source_name, body FROM events LIMIT 1").fetchone()
for i in range(300):
    db.execute("INSERT INTO events (id, type, ts_ms, timestamp, severity, source_name, body) "
               "VALUES (?, ?, ?, ?, ?, ?, ?)", (f"uncommitted-{i}", *row))
if sys.argv[2] == "crash":
    os.kill(os.getpid(), signal.SIGKILL)
print("held", flush=True)
sys.stdin.readline()
db.execute("ROLLBACK")
"""


def _rollback_mode_store(folder: Path) -> tuple[Path, list[dict]]:
    events = dataset.week()[:40]
    path = folder / "events.db"
    store = EventStore(str(path))
    try:
        store.insert(events)
    finally:
        store.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode=DELETE").fetchone() == ("delete",)
    db.close()
    return path, events


def _argv(command: str, db: Path, folder: Path) -> list[str]:
    extra = ["-o", str(folder / "r.html"), "--json", "-"] if command == "report" else ["--format", "json"]
    return [command, "--db", str(db), "--no-progress", *extra]


@pytest.mark.parametrize("command", ["report", "compliance"])
def test_a_store_a_crashed_writer_left_mid_transaction_is_refused_not_read_torn(command, tmp_path, capsys):
    db, events = _rollback_mode_store(tmp_path)
    done = subprocess.run([sys.executable, "-c", _WRITER, str(db), "crash"], capture_output=True, timeout=120)
    assert done.returncode == -signal.SIGKILL
    journal = Path(str(db) + "-journal")
    assert journal.stat().st_size > 0
    before = db.read_bytes(), journal.read_bytes()
    assert main(_argv(command, db, tmp_path)) == 2
    err = capsys.readouterr().err
    assert f"{db}: cannot open the SQLite store: " in err
    assert "a writer stopped in the middle of a transaction and left its -journal file" in err
    assert "malformed" not in err
    assert (db.read_bytes(), journal.read_bytes()) == before           # read-only: nothing rolled back here
    assert not (tmp_path / "r.html").exists()
    EventStore(str(db)).close()                                        # the next writer rolls it back
    assert main(_argv(command, db, tmp_path)) == 0
    assert json.loads(capsys.readouterr().out)["inputs"]["in_window"] == len(events)


@pytest.mark.parametrize("command", ["report", "compliance"])
def test_a_store_a_writer_holds_locked_is_refused_as_locked(command, tmp_path, capsys):
    db, events = _rollback_mode_store(tmp_path)
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(db), "hold"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline() == "held\n"
        assert main(_argv(command, db, tmp_path)) == 2
        err = capsys.readouterr().err
        assert f"{db}: cannot open the SQLite store: database is locked (another process holds it locked" in err
        assert not (tmp_path / "r.html").exists()
    finally:
        writer.communicate("\n", timeout=120)
    assert writer.returncode == 0
    assert main(_argv(command, db, tmp_path)) == 0                     # rolled back: only the committed events
    assert json.loads(capsys.readouterr().out)["inputs"]["in_window"] == len(events)


def test_a_store_written_while_read_as_immutable_is_refused_not_counted_half(tmp_path, monkeypatch):
    """Read as immutable (here as if it were another user's store: nothing may be made beside it), SQLite
    takes no lock; a writer that starts meanwhile and checkpoints writes into the file under the reader,
    whose counts could then mix two states. The file is checked unchanged once read."""
    from wia_security.cli import report
    events = dataset.week()
    path = tmp_path / "events.db"
    store = EventStore(str(path))
    try:
        store.insert(events[:200])
    finally:
        store.close()                                   # checkpointed: no -wal left, as a writer leaves it
    monkeypatch.setattr(report, "_would_leave_files_for_its_owner", lambda _path: True)
    unchanged = list(report._store_events(str(path), None, None, report.RejectLog()))
    assert len(unchanged) == 200                         # read as immutable, nothing changed: read in full

    reading = report._store_events(str(path), None, None, report.RejectLog())
    next(reading)
    writer = EventStore(str(path))
    try:
        writer.insert(events[200:])
    finally:
        writer.close()                                  # its checkpoint writes into the file being read
    with pytest.raises(report.ConfigError, match="it changed while it was read without a lock"):
        for _ in reading:
            pass
