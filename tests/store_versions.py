"""A store as released 0.1.0 (schema version 1) wrote it, for the tests of its migration and of reading it
as it is: the DDL is a record, never edit."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from wia_security.connectors.sqlite import epoch_ms

# The table and indexes exactly as schema version 1 (released 0.1.0) created them: a record, never edit.
VERSION_1_DDL = """
CREATE TABLE IF NOT EXISTS events (
    id          TEXT PRIMARY KEY,
    type        TEXT NOT NULL,
    ts_ms       INTEGER NOT NULL,
    timestamp   TEXT NOT NULL,
    severity    REAL NOT NULL,
    source_name TEXT,
    body        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts_ms);
CREATE INDEX IF NOT EXISTS events_type_ts ON events (type, ts_ms);
CREATE INDEX IF NOT EXISTS events_severity ON events (severity);
PRAGMA user_version=1;
"""


def version_1_store(path: Path, events: list[dict]) -> None:
    """A version-1 store at `path` holding `events` (the first of an id kept), its WAL folded in."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(VERSION_1_DDL)
    db.executemany("INSERT INTO events (id, type, ts_ms, timestamp, severity, source_name, body) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING",
                   [(e["id"], e["type"], epoch_ms(e["timestamp"]), e["timestamp"], e["severity"],
                     e["source"]["name"], json.dumps(e)) for e in events])
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
