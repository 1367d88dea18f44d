"""`wia-security query` reads the store read-only, as `report` and `compliance` do: it never migrates it, takes
no write lock and creates nothing. A store of schema version 1 (0.1.0) is read as it is: every column a query
reads is in it."""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from store_versions import version_1_store
from strategies import event_dicts

from wia_security.connectors.sqlite import EventStore

NOBODY = 65534


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file of the folder, by name."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_a_version_1_store_is_read_as_it_is_not_migrated(cli, tmp_path):
    events = event_dicts(12, seed=31)
    store_dir = tmp_path
    db = store_dir / "events.db"
    version_1_store(db, events)
    before = db.read_bytes()
    out = cli("query", "--db", str(db), "--format", "ndjson", "--limit", "0").out
    listed = [json.loads(line) for line in out.splitlines()]
    assert sorted(e["id"] for e in listed) == sorted(e["id"] for e in events)
    assert cli("query", "--db", str(db), "--count", "--type", "alert").out.strip() == str(
        sum(e["type"] == "alert" for e in events))
    assert db.read_bytes() == before                      # not migrated (a WAL reader may leave an empty -wal)
    wal = store_dir / "events.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == 1
    con.close()


def test_a_store_another_process_is_writing_is_read_without_waiting_for_its_lock(cli, tmp_path):
    """A version-1 store held by a writer (a migration in another process, a long batch): reading it needs no
    write lock (before, the migration `query` started waited 5 s for it and failed: database is locked)."""
    events = event_dicts(5, seed=32)
    db = tmp_path / "events.db"
    version_1_store(db, events)
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        r = cli("query", "--db", str(db), "--count")
        assert (r.code, r.out.strip()) == (0, "5"), r.err
    finally:
        writer.execute("ROLLBACK")
        writer.close()


@pytest.mark.parametrize("content", [b"", b'{"not": "a store"}\n'])
def test_a_file_that_is_no_store_is_named_and_left_as_it_was(cli, tmp_path, content):
    """An empty file used to be made into a store (tables created) and answered 'holds no events'."""
    path = tmp_path / "events.ndjson"
    path.write_bytes(content)
    r = cli("query", "--db", str(path))
    assert r.code == 2 and f"{path}: cannot open the SQLite store: " in r.err
    assert path.read_bytes() == content and sorted(os.listdir(tmp_path)) == ["events.ndjson"]


_AS_READER = """
import json, os, sys
import sqlite3, urllib.parse, ssl   # ssl: cli.serve imports it at parser build
import wia_security.cli, wia_security.cli.query, wia_security.cli.report, wia_security.connectors.sqlite
if os.geteuid() == 0:
    os.setgroups([])
    os.setgid(%d)
    os.setuid(%d)
sys.exit(wia_security.cli.main(json.loads(sys.argv[1])))
""" % (NOBODY, NOBODY)


@pytest.fixture
def shared_folder():
    """A folder another user can traverse (pytest's tmp_path is 0700), removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="wia-query-ro-"))
    folder.chmod(0o755)
    yield folder
    folder.chmod(0o755)
    shutil.rmtree(folder)


def test_a_store_the_user_may_only_read_is_read(shared_folder):
    events = event_dicts(8, seed=33)
    db = shared_folder / "events.db"
    store = EventStore(str(db))
    try:
        store.insert(events)
    finally:
        store.close()
    db.chmod(0o444)
    shared_folder.chmod(0o555)                  # no -wal/-shm can be made beside it either
    before = snapshot(shared_folder)
    done = subprocess.run([sys.executable, "-c", _AS_READER, json.dumps(["query", "--db", str(db), "--count"])],
                          capture_output=True, text=True, timeout=120, cwd="/")
    assert (done.returncode, done.stdout.strip()) == (0, "8"), done.stderr
    assert snapshot(shared_folder) == before and stat.S_IMODE(db.stat().st_mode) == 0o444


DAEMON = 1          # the store's owner in the next test: a user other than the reader (nobody) and not root

_AS_USER = """
import json, os, sys
import sqlite3, urllib.parse, ssl   # ssl: cli.serve imports it at parser build
import wia_security.cli, wia_security.cli.query, wia_security.cli.report, wia_security.connectors.sqlite
from wia_security.connectors.sqlite import EventStore
uid, argv = int(sys.argv[1]), json.loads(sys.argv[2])
event = json.loads(sys.argv[3]) if len(sys.argv) > 3 else None
if event:
    EventStore(argv[0]).close()     # loads what a write needs before the user may no longer read it
os.setgroups([])
os.setgid(uid)
os.setuid(uid)
os.umask(0o022)
if event:
    store = EventStore(argv[0])
    try:
        print(store.insert([event])[0])
    finally:
        store.close()
else:
    sys.exit(wia_security.cli.main(argv))
"""


def as_user(uid: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _AS_USER, str(uid), *args], capture_output=True, text=True,
                          timeout=120, cwd="/")


def test_a_reader_leaves_no_files_that_stop_the_stores_owner_from_writing(shared_folder):
    """A store another user writes, in a folder the reader may write too (a group both are in): SQLite makes the
    -wal/-shm files of a WAL store for a read-only open when it may, owned by the reader, and leaves them; the
    owner's next write then failed ('attempt to write a readonly database': a gateway stopped storing) until
    someone deleted them. The reader now reads it as immutable while no writer has it open (report and
    compliance open it the same way)."""
    events = event_dicts(5, seed=34)
    db = shared_folder / "events.db"
    store = EventStore(str(db))
    try:
        store.insert(events[:4])
    finally:
        store.close()
    os.chown(db, DAEMON, DAEMON)
    db.chmod(0o644)
    shared_folder.chmod(0o777)
    before = snapshot(shared_folder)
    read = as_user(NOBODY, json.dumps(["query", "--db", str(db), "--count"]))
    assert (read.returncode, read.stdout.strip()) == (0, "4"), read.stderr
    assert snapshot(shared_folder) == before          # no -wal, no -shm left behind
    wrote = as_user(DAEMON, json.dumps([str(db)]), json.dumps(events[4]))
    assert (wrote.returncode, wrote.stdout.strip()) == (0, "1"), wrote.stderr


@pytest.mark.parametrize("shape", [("--format", "table"), ("--format", "ndjson"), ("--count",)])
def test_a_store_written_while_read_as_immutable_fails_the_query(cli, tmp_path, monkeypatch, shape):
    """Read as immutable (another user's store: nothing may be made beside it), SQLite takes no lock; a writer
    that checkpoints into the file during the query changes what is being read. The run fails (exit 2, saying
    why) instead of passing off a mix of two states as the store's contents."""
    from wia_security.cli import query, report
    events = event_dicts(40, seed=7)
    db = tmp_path / "events.db"
    store = EventStore(str(db))
    try:
        store.insert(events[:20])
    finally:
        store.close()
    monkeypatch.setattr(report, "_would_leave_files_for_its_owner", lambda _path: True)
    assert cli("query", "--db", str(db), *shape).code == 0          # unchanged: read as before

    written: list[bool] = []

    def write_meanwhile(*_args):
        if written:                                     # once, at the first row shown
            return 0
        written.append(True)
        writer = EventStore(str(db))
        try:
            writer.insert(events[20:])
        finally:
            writer.close()                              # its checkpoint writes into the file being read
        return 0

    real_count = EventStore.count
    if shape == ("--count",):
        monkeypatch.setattr(EventStore, "count", lambda self, **kw: (write_meanwhile(), real_count(self, **kw))[1])
    else:
        real_headline = query._headline
        monkeypatch.setattr(query, "_headline", lambda event: (write_meanwhile(), real_headline(event))[1])
        real_dumps = query.jsonio.dumps
        monkeypatch.setattr(query.jsonio, "dumps", lambda value: (write_meanwhile(), real_dumps(value))[1])
    run = cli("query", "--db", str(db), *shape)
    assert run.code == 2, run
    assert "changed while it was read without a lock" in run.err
