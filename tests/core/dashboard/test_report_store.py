"""`wia-security report` / `compliance` reading the embedded store: read only, every event in the window."""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import dataset
from wia_security.connectors.sqlite import EventStore

NOBODY = 65534


def _store(folder: Path, events: list[dict]) -> Path:
    path = folder / "events.db"
    store = EventStore(str(path))
    try:
        assert store.insert(events)[0] == len(events)
    finally:
        store.close()
    return path


@pytest.fixture
def shared_folder():
    """A folder another user can traverse (pytest's tmp_path is 0700), removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="wia-report-ro-"))
    folder.chmod(0o755)
    yield folder
    for root, dirs, _files in os.walk(folder):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)
    shutil.rmtree(folder)


# Root writes whatever the modes say, so as root the CLI runs as nobody: the privileges are dropped inside
# the process, after the interpreter (under /root, which nobody may not search) has loaded what it needs.
_AS_READER = """
import json, os, sys
import sqlite3, tempfile, html, urllib.parse, importlib.resources, ssl   # ssl: cli.serve imports it at parser build
import wia_security.cli, wia_security.cli.report, wia_security.cli.compliance, wia_security.connectors.sqlite
import wia_security.dashboard.report
from wia_security.compliance import tables
for fid in tables.FRAMEWORK_IDS:
    tables.in_scope(fid)
if os.geteuid() == 0:
    os.setgroups([])
    os.setgid(%d)
    os.setuid(%d)
sys.exit(wia_security.cli.main(json.loads(sys.argv[1])))
""" % (NOBODY, NOBODY)


def _run_as_reader(argv: list[str]) -> subprocess.CompletedProcess:
    """The CLI as a user who may read the store but not write it or its folder."""
    return subprocess.run([sys.executable, "-c", _AS_READER, json.dumps(argv)], capture_output=True, text=True,
                          timeout=120, cwd="/")


@pytest.mark.parametrize("command", ["report", "compliance"])
def test_a_store_the_user_may_only_read_is_read(command, shared_folder):
    events = dataset.week()[:50]
    db = _store(shared_folder, events)
    out = shared_folder / "out"
    out.mkdir()
    out.chmod(0o777)
    db.chmod(0o444)
    shared_folder.chmod(0o555)                  # no -wal/-shm can be made beside it either
    before = sorted(os.listdir(shared_folder)), db.read_bytes()
    extra = ["-o", str(out / "r.html"), "--json", "-"] if command == "report" else ["--format", "json"]
    done = _run_as_reader([command, "--db", str(db), *extra])
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["inputs"]["in_window"] == len(events)
    assert (sorted(os.listdir(shared_folder)), db.read_bytes()) == before      # the store was not touched
    assert stat.S_IMODE(db.stat().st_mode) == 0o444


@pytest.mark.parametrize("content", [b"", b'{"not": "a store"}\n'])
def test_a_file_that_is_no_store_is_named_and_left_as_it_was(content, tmp_path, capsys):
    """An empty file used to be made into a store (tables created) and reported as 0 events."""
    from wia_security.cli import main
    path = tmp_path / "events.ndjson"
    path.write_bytes(content)
    assert main(["report", "--db", str(path), "-o", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert f"{path}: cannot open the SQLite store: " in err
    assert path.read_bytes() == content and not (tmp_path / "r.html").exists()


def test_a_stored_body_that_is_not_an_event_object_is_named_and_counted(tmp_path, capsys):
    from wia_security.cli import main
    events = dataset.week()[:3]
    db = _store(tmp_path, events)
    import sqlite3
    with sqlite3.connect(db) as con:
        con.execute("UPDATE events SET body = ? WHERE id = ?", ("{broken", events[0]["id"]))
        con.execute("UPDATE events SET body = ? WHERE id = ?", ("[1, 2]", events[1]["id"]))
    con.close()
    assert main(["report", "--db", str(db), "-o", str(tmp_path / "r.html"), "--json", "-"]) == 1
    out, err = capsys.readouterr()
    assert f"{db}: stored event {events[0]['id']}: its body is not JSON" in err
    assert f"{db}: stored event {events[1]['id']}: its body is not a JSON object" in err
    inputs = json.loads(out)["inputs"]
    assert inputs["rejected"] == 2 and inputs["in_window"] == 1


def test_a_read_only_store_whose_wal_holds_events_is_refused_not_read_without_them(shared_folder, tmp_path):
    """With no -shm and a folder nobody may write, SQLite can open the store only as immutable, which
    would not read the -wal file: the events in it would be left out silently."""
    import sqlite3
    events = dataset.week()[:20]
    live = tmp_path / "live"
    live.mkdir()
    db = _store(live, events[:10])
    writer = EventStore(str(db))
    try:
        writer._db.execute("PRAGMA wal_autocheckpoint=0")
        writer.insert(events[10:])
        shutil.copy(db, shared_folder / "events.db")            # a snapshot taken while the writer ran
        shutil.copy(str(db) + "-wal", shared_folder / "events.db-wal")
    finally:
        writer.close()
    assert os.path.getsize(shared_folder / "events.db-wal") > 0
    for name in ("events.db", "events.db-wal"):
        (shared_folder / name).chmod(0o444)
    out = shared_folder / "out"
    out.mkdir()
    out.chmod(0o777)
    shared_folder.chmod(0o555)
    done = _run_as_reader(["report", "--db", str(shared_folder / "events.db"), "-o", str(out / "r.html")])
    assert done.returncode == 2, done.stderr
    assert f"{shared_folder / 'events.db'}: cannot open the SQLite store: " in done.stderr
    assert "its -wal file holds events not yet merged" in done.stderr
    assert not (out / "r.html").exists()


@pytest.mark.parametrize("command", ["report", "compliance"])
def test_a_relative_window_is_read_once_for_the_store_and_the_count(command, tmp_path, monkeypatch, capsys):
    """`--since 7d` was resolved twice, for the window and again for the store query a moment later: the
    events between the two 'now's were left out of the query and of every count. A clock that moves on
    by a second at each reading shows it."""
    from datetime import datetime, timedelta, timezone

    from wia_security import timeutil
    from wia_security.cli import main, report
    start = datetime.now(timezone.utc).replace(microsecond=0)
    readings = iter(start + timedelta(seconds=i) for i in range(100))

    class Clock(datetime):
        @classmethod
        def now(cls, tz=None):
            return next(readings)

    real = timeutil.time_or_relative
    monkeypatch.setattr(report, "datetime", Clock)            # each reading of the clock a second later
    monkeypatch.setattr(report, "time_or_relative", lambda value, now=None: real(value, now or next(readings)))
    event = dataset.week()[0]
    event["timestamp"] = timeutil.to_iso(start - timedelta(days=7) + timedelta(milliseconds=500))
    db = _store(tmp_path, [event])
    extra = ["-o", str(tmp_path / "r.html"), "--json", "-"] if command == "report" else ["--format", "json"]
    assert main([command, "--db", str(db), "--since", "7d", *extra]) == 0
    inputs = json.loads(capsys.readouterr().out)["inputs"]
    assert (inputs["events_read"], inputs["in_window"]) == (1, 1)


def test_events_the_store_indexed_one_millisecond_off_are_still_in_their_window(tmp_path, capsys):
    """The store indexes `int(timestamp() * 1000)`, which lands one below the exact millisecond for some
    instants (1971-01-30T03:36:02.057Z -> ...056) and one above for fractions before 1970 (-0.5 ms -> 0);
    the window is exact (floored ms), so the store is asked for 1 ms more on each side."""
    from wia_security.cli import main
    first, second = dataset.week()[:2]
    first["timestamp"] = "1971-01-30T03:36:02.057Z"            # exactly --since: in the window
    second["timestamp"] = "1969-12-31T23:59:59.9995Z"          # before --until 1970-01-01: in the window
    db = _store(tmp_path, [first, second])
    for since, until, event in (("1971-01-30T03:36:02.057Z", "1971-02-01T00:00:00Z", first),
                                ("1969-12-31T00:00:00Z", "1970-01-01T00:00:00Z", second)):
        argv = ["compliance", "--db", str(db), "--since", since, "--until", until, "--format", "json"]
        assert main(argv) == 0
        out = json.loads(capsys.readouterr().out)
        assert (out["inputs"]["events_read"], out["inputs"]["in_window"]) == (1, 1), event["timestamp"]


@pytest.mark.parametrize("command", ["report", "compliance"])
def test_a_fifo_given_as_the_store_is_refused_at_once(command, tmp_path):
    """Opening a FIFO to read blocks until someone writes to it: the read-only open hung for ever."""
    fifo = tmp_path / "events.db"
    os.mkfifo(fifo)
    extra = ["-o", str(tmp_path / "r.html")] if command == "report" else []
    done = subprocess.run([sys.executable, "-m", "wia_security", command, "--db", str(fifo), *extra],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert f"{fifo}: cannot open the SQLite store: it is a FIFO (named pipe), not a regular file" in done.stderr
