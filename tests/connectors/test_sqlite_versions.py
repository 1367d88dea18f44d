"""The embedded store keeps the newest version of each event id.

A later envelope `timestamp` (or, at the same instant, a later `data.updated_at`) replaces the stored
event; a re-send or an older version is a duplicate and changes nothing, whatever the arrival order.
A store written before these versions were kept (schema version 1, as released 0.1.0 wrote it) is
migrated on open and keeps its events.
"""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from wia_security.builders import IncidentBuilder
from store_versions import version_1_store

from wia_security.connectors.sqlite import SCHEMA_VERSION, EventStore, SqliteSink

INCIDENT_ID = "3f1f2a4e-7c1b-4d5e-9a2b-0c6d8e9f1a2b"


def incident(status: str, timestamp: str, updated_at: str | None = None) -> dict:
    builder = (IncidentBuilder().id(INCIDENT_ID).timestamp(timestamp).title("Ransomware on FS-01")
               .category("ransomware").priority("high").status(status).incident_id("INC-7"))
    event = builder.build().to_dict()
    if updated_at is None:
        event["data"].pop("updated_at", None)
    else:
        event["data"]["updated_at"] = updated_at
    return event


def stored_status(store: EventStore) -> str:
    [row] = store.query(event_id=INCIDENT_ID)
    return row.event["data"]["status"]


def test_a_later_version_replaces_the_open_incident(tmp_path):
    sink = SqliteSink(str(tmp_path / "s.db"))
    first = sink.send([incident("investigating", "2025-12-14T09:00:00.000Z")])
    later = sink.send([incident("closed", "2025-12-14T11:30:00.000Z")])
    assert (first.delivered, first.duplicates, later.delivered, later.duplicates) == (1, 0, 1, 0)
    assert stored_status(sink.store) == "closed"
    assert sink.store.count() == 1
    # the indexed columns follow the stored version: a query by time finds it at its new timestamp
    assert sink.store.count(since="2025-12-14T11:00:00Z") == 1


def test_an_older_version_arriving_after_the_newer_one_is_a_duplicate(tmp_path):
    sink = SqliteSink(str(tmp_path / "s.db"))
    assert sink.send([incident("closed", "2025-12-14T11:30:00.000Z")]).delivered == 1
    late = sink.send([incident("investigating", "2025-12-14T09:00:00.000Z")])
    assert (late.delivered, late.duplicates, late.failed) == (0, 1, [])
    assert stored_status(sink.store) == "closed"


def test_instants_are_compared_not_spellings(tmp_path):
    """11:30+02:00 is 09:30Z: earlier than 10:00Z although it sorts after it as text."""
    sink = SqliteSink(str(tmp_path / "s.db"))
    sink.send([incident("investigating", "2025-12-14T10:00:00Z")])
    assert sink.send([incident("closed", "2025-12-14T11:30:00+02:00")]).duplicates == 1
    assert stored_status(sink.store) == "investigating"
    # one microsecond later is later (milliseconds alone would call them equal)
    assert sink.send([incident("closed", "2025-12-14T10:00:00.000001Z")]).delivered == 1
    assert stored_status(sink.store) == "closed"


def test_at_the_same_timestamp_a_later_updated_at_replaces(tmp_path):
    sink = SqliteSink(str(tmp_path / "s.db"))
    at = "2025-12-14T09:00:00.000Z"
    sink.send([incident("new", at)])                                               # no updated_at: earliest
    assert sink.send([incident("investigating", at, "2025-12-14T09:05:00Z")]).delivered == 1
    assert stored_status(sink.store) == "investigating"
    assert sink.send([incident("closed", at, "2025-12-14T10:05:00+01:00")]).duplicates == 1   # the same instant
    assert sink.send([incident("new", at)]).duplicates == 1                       # absent is older than any
    assert sink.send([incident("closed", at, "2025-12-14T09:40:00Z")]).delivered == 1
    assert stored_status(sink.store) == "closed"


def test_an_identical_resend_is_a_duplicate_and_changes_nothing(tmp_path):
    sink = SqliteSink(str(tmp_path / "s.db"))
    event = incident("closed", "2025-12-14T11:30:00.000Z", "2025-12-14T11:30:00.000Z")
    assert sink.send([event]).delivered == 1
    body = sink.store._db.execute("SELECT body FROM events").fetchone()[0]
    again = sink.send([event, event])
    assert (again.delivered, again.duplicates) == (0, 2)
    assert sink.store._db.execute("SELECT body FROM events").fetchone()[0] == body


def test_versions_within_one_batch_keep_the_newest(tmp_path):
    sink = SqliteSink(str(tmp_path / "s.db"))
    batch = [incident("new", "2025-12-14T09:00:00Z"), incident("closed", "2025-12-14T12:00:00Z"),
             incident("investigating", "2025-12-14T10:00:00Z")]
    report = sink.send(batch)
    assert (report.delivered, report.duplicates) == (2, 1)
    assert stored_status(sink.store) == "closed"


def test_an_unreadable_updated_at_is_refused_naming_it(tmp_path):
    store = EventStore(str(tmp_path / "s.db"))
    inserted, duplicates, rejected = store.insert([incident("closed", "2025-12-14T09:00:00Z", "yesterday")])
    assert (inserted, duplicates) == (0, 0)
    assert "data.updated_at 'yesterday' is not an RFC 3339 date-time" in rejected[0].reason


def test_a_version_1_store_is_migrated_and_keeps_its_events(tmp_path):
    from strategies import event_dicts
    path = tmp_path / "old.db"
    others = event_dicts(50, seed=7)
    version_1_store(path, others + [incident("investigating", "2025-12-14T09:00:00Z", "2025-12-14T09:00:00Z")])
    store = EventStore(str(path))
    assert store._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    assert store.count() == 51
    assert {r.id: r.event for r in store.query(limit=None)} == {e["id"]: e for e in others} | {
        INCIDENT_ID: incident("investigating", "2025-12-14T09:00:00Z", "2025-12-14T09:00:00Z")}
    # the old rows now carry their versions: an older re-send is a duplicate, a newer one replaces
    assert store.insert([incident("closed", "2025-12-14T09:00:00Z", "2025-12-14T08:00:00Z")])[:2] == (0, 1)
    assert store.insert(others[:5])[:2] == (0, 5)
    assert store.insert([incident("closed", "2025-12-14T09:00:00Z", "2025-12-14T09:10:00Z")])[:2] == (1, 0)
    assert stored_status(store) == "closed"
    store.close()
    reopened = EventStore(str(path))                    # opening a migrated store again changes nothing
    assert reopened.count() == 51 and stored_status(reopened) == "closed"


def test_a_version_1_store_larger_than_a_migration_chunk_gets_every_row_versioned(tmp_path):
    from wia_security.connectors.sqlite import _MIGRATE_CHUNK
    path = tmp_path / "old.db"
    version_1_store(path, [])
    template = incident("closed", "2025-12-14T09:00:00Z", "2025-12-14T09:30:00Z")
    n = _MIGRATE_CHUNK * 2 + 7
    db = sqlite3.connect(path, isolation_level=None)
    db.executemany("INSERT INTO events (id, type, ts_ms, timestamp, severity, source_name, body) VALUES (?, ?, ?, ?, ?, ?, ?)",
                   [(f"id-{i}", "incident", 0, template["timestamp"], 5.0, "x", json.dumps(dict(template, id=f"id-{i}")))
                    for i in range(n)])
    db.close()
    store = EventStore(str(path))
    assert store._db.execute("SELECT count(*), count(ts_us), count(updated_us), min(ts_us), max(ts_us), min(updated_us), "
                             "max(updated_us) FROM events").fetchone() == (
        n, n, n, 1765702800000000, 1765702800000000, 1765704600000000, 1765704600000000)


CRASH_IN_MIGRATION = """
import os, sqlite3, sys
connect = sqlite3.connect
def connect_then_die_before_commit(*args, **kwargs):
    db = connect(*args, **kwargs)
    db.set_trace_callback(lambda sql: os._exit(9) if sql.startswith("PRAGMA user_version=") else None)
    return db
sqlite3.connect = connect_then_die_before_commit
from wia_security.connectors.sqlite import EventStore
EventStore(sys.argv[1])
"""


def test_a_migration_killed_before_its_commit_leaves_a_version_1_store_that_migrates_next_time(tmp_path):
    from strategies import event_dicts
    path = tmp_path / "old.db"
    events = event_dicts(20, seed=8)
    version_1_store(path, events)
    # the process dies once the columns are added and the rows filled, before the version is committed
    died = subprocess.run([sys.executable, "-c", CRASH_IN_MIGRATION, str(path)], capture_output=True)
    assert died.returncode == 9, died.stderr
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    db.close()
    store = EventStore(str(path))
    assert store._db.execute("PRAGMA user_version").fetchone()[0] == 2
    assert store.count() == 20 and store.insert(events)[:2] == (0, 20)


def test_a_store_0_1_0_wrote_to_after_the_migration_is_migrated_again(tmp_path):
    """0.1.0 sets user_version back to 1 and stores rows without versions: the next open fills them."""
    path = tmp_path / "s.db"
    EventStore(str(path)).close()
    version_1_store(path, [incident("investigating", "2025-12-14T09:00:00Z")])
    store = EventStore(str(path))
    assert store._db.execute("SELECT count(*) FROM events WHERE ts_us IS NULL").fetchone()[0] == 0
    assert store.insert([incident("closed", "2025-12-14T10:00:00Z")])[:2] == (1, 0)
    assert stored_status(store) == "closed"


@pytest.mark.parametrize("order", ["open-then-closed", "closed-then-open"])
def test_forward_both_versions_then_query_shows_the_closed_incident(tmp_path, order):
    opened = incident("investigating", "2025-12-14T09:00:00.000Z")
    closed = incident("closed", "2025-12-14T11:30:00.000Z", "2025-12-14T11:30:00.000Z")
    versions = [opened, closed] if order == "open-then-closed" else [closed, opened]
    store = f"sqlite:///{tmp_path}/events.db"
    env = dict(os.environ, NO_COLOR="1")
    for i, event in enumerate(versions):
        src = tmp_path / f"v{i}.ndjson"
        src.write_text(json.dumps(event) + "\n")
        run = subprocess.run([sys.executable, "-m", "wia_security", "forward", str(src), "--to", store],
                             capture_output=True, text=True, env=env, cwd=tmp_path)
        assert run.returncode == 0, run.stderr
    run = subprocess.run([sys.executable, "-m", "wia_security", "query", "--db", store, "--id", INCIDENT_ID,
                          "--format", "ndjson"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    [line] = run.stdout.splitlines()
    assert json.loads(line)["data"]["status"] == "closed"


def test_updated_at_in_another_type_s_data_is_data_not_a_version(tmp_path):
    """Only the incident schema defines data.updated_at (a date-time). An alert's data may hold any extra
    field (the schema allows them): an `updated_at` there that is a number or free text is valid and stored
    as 0.1.0 stored it, and does not decide which version is kept."""
    from wia_security.validation import validate_event as validate
    from strategies import event_dicts
    [alert] = event_dicts(1, seed=3, event_type="alert")
    assert alert["type"] == "alert"
    epoch_number = dict(alert, data=dict(alert["data"], updated_at=1765702800))
    free_text = dict(alert, data=dict(alert["data"], updated_at="yesterday, after the call"))
    assert validate(epoch_number).valid and validate(free_text).valid
    sink = SqliteSink(str(tmp_path / "s.db"))
    first = sink.send([epoch_number])
    assert (first.delivered, [r.reason for r in first.failed]) == (1, [])
    # the same timestamp: a re-send whatever its updated_at says, so nothing replaces the stored one
    again = sink.send([free_text])
    assert (again.delivered, again.duplicates, [r.reason for r in again.failed]) == (0, 1, [])
    [row] = sink.store.query(event_id=alert["id"])
    assert row.event["data"]["updated_at"] == 1765702800


def test_a_row_a_running_0_1_0_writer_stored_after_the_migration_is_replaced_by_a_newer_version(tmp_path):
    """A 0.1.0 gateway that had the store open before a newer `forward` migrated it keeps writing rows
    without versions (its INSERT knows no ts_us); the migrated store stays at version 2 and is not filled
    again until some later open. A newer version must still replace such a row, an older one must not."""
    path = tmp_path / "s.db"
    store = EventStore(str(path))                                   # migrated (here: created) at version 2
    old_writer = sqlite3.connect(path, isolation_level=None)       # 0.1.0's statement, its connection open
    opened = incident("investigating", "2025-12-14T09:00:00Z", "2025-12-14T09:00:00Z")
    old_writer.execute("INSERT INTO events (id, type, ts_ms, timestamp, severity, source_name, body) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING",
                       (INCIDENT_ID, "incident", 0, opened["timestamp"], opened["severity"], "x", json.dumps(opened)))
    old_writer.close()
    assert store._db.execute("SELECT ts_us FROM events").fetchone() == (None,)
    assert store.insert([incident("new", "2025-12-14T08:00:00Z")])[:2] == (0, 1)          # older: kept
    assert store.insert([incident("new", "2025-12-14T09:00:00Z")])[:2] == (0, 1)          # same, no updated_at
    assert stored_status(store) == "investigating"
    assert store.insert([incident("closed", "2025-12-14T09:00:00Z", "2025-12-14T09:20:00Z")])[:2] == (1, 0)
    assert stored_status(store) == "closed"
    assert store._db.execute("SELECT ts_us, updated_us FROM events").fetchone() == (1765702800000000, 1765704000000000)


PAUSE_BETWEEN_CHUNKS = """
import sqlite3, sys
connect = sqlite3.connect
seen_update = False
def pause_after_the_first_chunk(sql):
    global seen_update
    if sql.startswith("UPDATE events SET ts_us"):
        seen_update = True
    elif seen_update and (sql.startswith("BEGIN") or sql.startswith("SELECT rowid")):
        seen_update = False
        print("paused", flush=True)
        sys.stdin.readline()                 # until the test has written
def connect_and_pause(*args, **kwargs):
    db = connect(*args, **kwargs)
    db.set_trace_callback(pause_after_the_first_chunk)
    return db
sqlite3.connect = connect_and_pause
from wia_security.connectors.sqlite import EventStore
EventStore(sys.argv[1]).close()
print("migrated", flush=True)
"""


def test_writers_are_not_locked_out_while_a_migration_runs(tmp_path):
    """A migration of a big 0.1.0 store takes 10 s or more a million events. Another writer on the file (the
    gateway opening it too, a 0.1.0 process that had it open) waits at most one chunk, not the whole
    migration: with SQLite's 5 s busy timeout it got 'database is locked' (a gateway that could not start,
    a batch of the gateway's or forward's failed)."""
    from wia_security.connectors.sqlite import _MIGRATE_CHUNK
    path = tmp_path / "old.db"
    version_1_store(path, [incident("investigating", "2025-12-14T09:00:00Z")])
    template = incident("closed", "2025-12-14T09:00:00Z", "2025-12-14T09:30:00Z")
    db = sqlite3.connect(path, isolation_level=None)
    db.executemany("INSERT INTO events (id, type, ts_ms, timestamp, severity, source_name, body) VALUES (?, ?, ?, ?, ?, ?, ?)",
                   [(f"id-{i}", "incident", 0, template["timestamp"], 5.0, "x", json.dumps(dict(template, id=f"id-{i}")))
                    for i in range(_MIGRATE_CHUNK * 2)])
    db.close()
    migrating = subprocess.Popen([sys.executable, "-c", PAUSE_BETWEEN_CHUNKS, str(path)], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert migrating.stdout.readline() == "paused\n", migrating.stderr.read()
        # a 0.1.0 writer, not waiting at all for the lock
        old_writer = sqlite3.connect(path, isolation_level=None, timeout=0)
        extra = dict(template, id="written-by-0.1.0")
        old_writer.execute("INSERT INTO events (id, type, ts_ms, timestamp, severity, source_name, body) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING",
                           (extra["id"], "incident", 0, extra["timestamp"], 5.0, "x", json.dumps(extra)))
        old_writer.close()
        # this version opening the store meanwhile (it finishes the filling) and storing a newer version
        store = EventStore(str(path))
        assert store.insert([incident("closed", "2025-12-14T10:00:00Z")])[:2] == (1, 0)
        assert stored_status(store) == "closed"
        migrating.stdin.write("\n")
        migrating.stdin.flush()
        assert migrating.stdout.readline() == "migrated\n"
        assert migrating.wait(timeout=60) == 0, migrating.stderr.read()
        assert store._db.execute("SELECT count(*), count(ts_us), count(updated_us) FROM events").fetchone() == (
            _MIGRATE_CHUNK * 2 + 2, _MIGRATE_CHUNK * 2 + 2, _MIGRATE_CHUNK * 2 + 1)   # INCIDENT_ID: no updated_at
        assert store._db.execute("PRAGMA user_version").fetchone()[0] == 2
        assert stored_status(store) == "closed"
    finally:
        if migrating.poll() is None:
            migrating.kill()
            migrating.wait()
