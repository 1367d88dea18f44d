"""The embedded event store: WIA events in one SQLite file, indexed by time, type and severity.

`sqlite:///wia-events.db` (relative path) or `sqlite:////var/lib/wia/events.db` (absolute).
One row per event id. Storing an id already present replaces the stored event only when the new one
is a newer version of it: its `timestamp` is a later instant, or the same instant with a later
`data.updated_at` (an incident's, absent counting as earliest; no other type's schema defines it, so
theirs is plain data and not looked at). Instants are compared, not spellings
(`+02:00` and `Z` offsets alike), to the microsecond. Anything else (a re-send, an older version
arriving after a newer one) changes nothing and is counted as a duplicate, so at-least-once
redelivery stays harmless and retries out of order never bring an old status back. The comparison
runs in the insert statement itself (an upsert), so concurrent writers on one file stay correct. A
newer version takes the next row number (the gateway's arrival-order feed reads rows in order, so its
readers get the new version); other rows never move.
Standard library only.

Schema versions (`PRAGMA user_version`): 1 (released 0.1.0) had no version columns; 2 adds `ts_us`
and `updated_us`, filled from each stored event when a version-1 store is first opened, a chunk of rows
per transaction (a crash leaves the store at version 1 with some rows filled; the next open fills the
rest, and rows not filled yet are compared from their own timestamp and body meanwhile).
"""
from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator, Sequence
from urllib.parse import unquote, urlsplit

from wia_security import jsonio
from wia_security.errors import ConfigError
from wia_security.timeutil import parse_iso

from .base import BaseSink, DeliveryReport, Rejected
from .dead_letter import create_private

DEFAULT_URL = "sqlite:///wia-events.db"
SCHEMA_VERSION = 2

_DDL = """
CREATE TABLE IF NOT EXISTS events (
    id          TEXT PRIMARY KEY,
    type        TEXT NOT NULL,
    ts_ms       INTEGER NOT NULL,
    timestamp   TEXT NOT NULL,
    severity    REAL NOT NULL,
    source_name TEXT,
    body        TEXT NOT NULL,
    ts_us       INTEGER,
    updated_us  INTEGER
);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts_ms);
CREATE INDEX IF NOT EXISTS events_type_ts ON events (type, ts_ms);
CREATE INDEX IF NOT EXISTS events_severity ON events (severity);
"""
# ts_us: the envelope timestamp in epoch microseconds; updated_us: data.updated_at likewise, NULL when
# absent (the earliest, hence the IFNULL floor below every real instant).
_VERSION_COLUMNS = {"ts_us": "INTEGER", "updated_us": "INTEGER"}
_EARLIEST = -(2 ** 63)
# A row without versions (ts_us NULL) was written by 0.1.0 after this store was migrated: a 0.1.0 process
# that had the file open before keeps inserting so, and the store stays at version 2 until its next open.
# Its versions are read from the row itself (SQL functions, evaluated only for such a row), as the
# migration would fill them; compared with NULL, a newer version could never replace it.
_STORED_TS = "IFNULL(events.ts_us, wia_stored_ts_us(events.timestamp))"
_STORED_UPDATED = "(CASE WHEN events.ts_us IS NULL THEN wia_stored_updated_us(events.body) ELSE events.updated_us END)"
# A newer version takes the next row number, as a new event would: the gateway's arrival-order feed (GET
# /v1/events?after=<row>) then serves it to readers already past its old row, and a reader not there yet
# reads it once, at its new row. Row numbers only grow (the largest plus one), so a reader's position keeps
# its meaning; re-sends and older versions change nothing and keep their row.
_NEXT_ROW = "(SELECT MAX(rowid) + 1 FROM events)"
_INSERT = ("INSERT INTO events (id, type, ts_ms, timestamp, severity, source_name, body, ts_us, updated_us) "
           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
           "type = excluded.type, ts_ms = excluded.ts_ms, timestamp = excluded.timestamp, "
           "severity = excluded.severity, source_name = excluded.source_name, body = excluded.body, "
           "ts_us = excluded.ts_us, updated_us = excluded.updated_us, "
           f"rowid = {_NEXT_ROW} "
           f"WHERE excluded.ts_us > {_STORED_TS} OR (excluded.ts_us = {_STORED_TS} AND "
           f"IFNULL(excluded.updated_us, {_EARLIEST}) > IFNULL({_STORED_UPDATED}, {_EARLIEST}))")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_US = timedelta(microseconds=1)
_MIGRATE_CHUNK = 10_000                 # rows read at a time when a migration fills the version columns


@contextmanager
def write_transaction(db: sqlite3.Connection) -> Iterator[None]:
    """A transaction that takes the write lock at once (BEGIN IMMEDIATE): reads inside it see no other
    writer's changes land in between (on an autocommit connection: isolation_level=None)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def path_from_url(url: str) -> str:
    """sqlite:///rel.db -> rel.db, sqlite:////abs.db -> /abs.db; a bare path is taken as is."""
    if "://" not in url:
        return url
    from .delivery.sqlite_url import shown, sqlite_url_problem
    parts = urlsplit(url)
    if parts.scheme != "sqlite" or parts.netloc:
        raise ConfigError("expected sqlite:///relative.db or sqlite:////absolute.db", key="url", source=shown(url))
    problem = sqlite_url_problem(url)      # a ?query or #fragment: nothing would read it
    if problem:
        raise ConfigError(problem, key="url")
    path = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
    if not path:
        raise ConfigError("no database path", key="url", source=url)
    return path


def _instant(timestamp: str) -> datetime:
    try:
        moment = datetime.fromisoformat(timestamp)     # fast C path for the common spellings
        if moment.tzinfo is None:
            raise ValueError
    except ValueError:
        moment = parse_iso(timestamp)                  # any RFC 3339 spelling
    return moment


def epoch_ms(timestamp: str) -> int:
    return int(_instant(timestamp).timestamp() * 1000)


def epoch_us(timestamp: str) -> int:
    """Exact integer microseconds (a float product could make two instants 1 µs apart compare equal)."""
    return (_instant(timestamp) - _EPOCH) // _US


def _updated_us(event: dict[str, Any]) -> int | None:
    """An incident's data.updated_at as epoch microseconds; None when it has none. Only the incident schema
    defines it (a date-time): another type's data may hold an `updated_at` of any kind, which is data like
    any other extra field, not a version (refusing it would refuse a valid event)."""
    if event.get("type") != "incident":
        return None
    data = event.get("data")
    updated = data.get("updated_at") if isinstance(data, dict) else None
    if updated is None:
        return None
    if not isinstance(updated, str):
        raise TypeError(f"data.updated_at is {type(updated).__name__}, not an RFC 3339 date-time string")
    try:
        return epoch_us(updated)
    except ValueError:
        raise ValueError(f"data.updated_at {updated[:64]!r} is not an RFC 3339 date-time") from None


def _stored_versions(timestamp: str, body: str) -> tuple[int, int | None]:
    """(ts_us, updated_us) of a row stored before schema version 2. Its timestamp parsed when it was
    stored; an unreadable data.updated_at in its body counts as absent (the row cannot be refused now)."""
    return epoch_us(timestamp), _stored_updated_us(body)


def _stored_ts_us(timestamp: str) -> int | None:
    try:
        return epoch_us(timestamp)
    except (TypeError, ValueError, OverflowError):     # never raise inside SQLite: the row keeps no version
        return None


def _stored_updated_us(body: str) -> int | None:
    try:
        event = jsonio.loads(body)
        return _updated_us(event) if isinstance(event, dict) else None
    except (TypeError, ValueError, OverflowError):
        return None


@dataclass(slots=True)
class StoredEvent:
    id: str
    type: str
    timestamp: str
    severity: float
    source_name: str | None
    event: dict[str, Any]


def _hint(path: str) -> str:
    import os
    if os.path.isdir(path):
        return " (the path is a directory)"
    folder = os.path.dirname(os.path.abspath(path))
    return "" if os.path.isdir(folder) else f" (directory {folder} does not exist)"


class EventStore:
    """The SQLite file itself: insert, query and count."""

    _exact: bool        # the store has ts_us (schema version 2): time filters and order to the microsecond

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            if path != ":memory:" and not path.startswith("file:"):
                # Whole events (user names, command lines) are not for every local user: a new store is
                # 0600 whatever the umask, and SQLite gives its -wal and -shm files the database's mode.
                create_private(path)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.create_function("wia_stored_ts_us", 1, _stored_ts_us, deterministic=True)
            self._db.create_function("wia_stored_updated_us", 1, _stored_updated_us, deterministic=True)
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: each committed batch is in the fsynced WAL before send() reports it delivered, so a
            # power cut cannot take back events a source has since committed its offset past. (NORMAL
            # survives a killed process but may lose the last commits on power loss.)
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_DDL)
            self._migrate()
            self._exact = True
        except OSError as exc:              # a missing folder, a folder we may not write in
            raise ConfigError(f"cannot open the SQLite store: {exc.strerror or exc}{_hint(path)}", source=path) from None
        except sqlite3.Error as exc:        # a directory, a missing folder, not a database, read-only...
            raise ConfigError(f"cannot open the SQLite store: {exc}{_hint(path)}", source=path) from None

    @classmethod
    def reader(cls, path: str, db: sqlite3.Connection) -> "EventStore":
        """The store over a connection opened read-only (`wia-security query`, as report and compliance read it):
        query and count only. Nothing is migrated or created: a version-1 store is read as it is (every column
        a query reads is in it), and a reader never waits for a writer's lock."""
        store = cls.__new__(cls)
        store.path, store._db = path, db
        store._exact = "ts_us" in {row[1] for row in db.execute("PRAGMA table_info(events)")}
        return store

    def _migrate(self) -> None:
        """Bring a store of an older schema version to SCHEMA_VERSION: the columns in one short transaction,
        then the rows filled a chunk per transaction, so another writer on the file (a gateway opening it
        too, a 0.1.0 process that had it open) waits for one chunk, not for the whole migration (~25 s a
        million events, past SQLite's 5 s busy timeout: 'database is locked'). Rows not filled yet are
        compared from their own timestamp and body (_STORED_TS), so writing meanwhile stays correct. A
        crash leaves user_version below 2 and the next open fills the rows still without versions."""
        db = self._db
        if db.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
            return
        with write_transaction(self._db):    # the write lock first: another process may be migrating too
            present = {row[1] for row in db.execute("PRAGMA table_info(events)")}
            for column, kind in _VERSION_COLUMNS.items():
                if column not in present:
                    db.execute(f"ALTER TABLE events ADD COLUMN {column} {kind}")
        # Rows without versions: a version-1 store's (0.1.0 also leaves them when it writes to a store this
        # version migrated, and sets user_version back to 1).
        after = -(2 ** 63)
        while True:
            with write_transaction(self._db):
                rows = db.execute("SELECT rowid, timestamp, body FROM events WHERE rowid > ? AND ts_us IS NULL "
                                  "ORDER BY rowid LIMIT ?", (after, _MIGRATE_CHUNK)).fetchall()
                if not rows:
                    db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                    return
                db.executemany("UPDATE events SET ts_us = ?, updated_us = ? WHERE rowid = ?",
                               ((*_stored_versions(ts, body), rowid) for rowid, ts, body in rows))
            after = rows[-1][0]

    def insert(self, events: Sequence[dict[str, Any]],
               bodies: Sequence[str | None] | None = None) -> tuple[int, int, list[Rejected]]:
        """Store events in one transaction -> (stored, duplicates, rejected).

        `stored` counts new ids and newer versions that replaced a stored one; `duplicates` the rest
        (same or older versions of a stored id, and repeats within the batch).

        `bodies[i]`, when given and not None, is the JSON text of `events[i]` as received (the
        pipeline passes the input line of an event it did not change): stored as is, not re-serialized."""
        rows, _, rejected = self._rows(events, bodies)
        db = self._db
        before = db.total_changes
        db.execute("BEGIN")
        try:
            db.executemany(_INSERT, rows)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        inserted = db.total_changes - before
        return inserted, len(rows) - inserted, rejected

    def insert_each(self, events: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[Rejected]]:
        """insert(), telling which events were stored (new ids and newer versions, in order) -> (stored, rejected);
        the rest are duplicates. One statement per event (the gateway's stream publishes only what was stored)."""
        rows, storable, rejected = self._rows(events, None)
        db = self._db
        stored = []
        db.execute("BEGIN")
        try:
            for row, event in zip(rows, storable):
                before = db.total_changes
                db.execute(_INSERT, row)
                if db.total_changes != before:
                    stored.append(event)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return stored, rejected

    def _rows(self, events: Sequence[dict[str, Any]], bodies: Sequence[str | None] | None
              ) -> tuple[list[tuple[Any, ...]], list[dict[str, Any]], list[Rejected]]:
        """(rows to insert, the events they are, the events that cannot be stored with why)."""
        rows = []
        storable = []
        rejected: list[Rejected] = []
        dumps = jsonio.dumps
        for i, e in enumerate(events):
            try:
                body = (bodies[i] if bodies is not None else None) or dumps(e)
                source = e.get("source")
                timestamp = e["timestamp"]
                moment = _instant(timestamp)
                rows.append((e["id"], e["type"], int(moment.timestamp() * 1000), timestamp, e["severity"],
                             source.get("name") if isinstance(source, dict) else None, body,
                             (moment - _EPOCH) // _US, _updated_us(e)))
                storable.append(e)
            except KeyError as exc:         # a library caller that did not validate first (the CLI does)
                rejected.append(Rejected(f"cannot store event: it has no {exc.args[0]!r} (the store indexes id, type, "
                                         "timestamp and severity: validate events before sending them)",
                                         event=e, sink="sqlite"))
            except (TypeError, ValueError, OverflowError) as exc:
                rejected.append(Rejected(f"cannot store event: {type(exc).__name__}: {exc}", event=e, sink="sqlite"))
        return rows, storable, rejected

    def query(self, *, types: Sequence[str] = (), since: str | None = None, until: str | None = None,
              min_severity: float | None = None, max_severity: float | None = None, source: str | None = None,
              event_id: str | None = None, limit: int | None = 100, newest_first: bool = True) -> Iterator[StoredEvent]:
        where, args = self._filters(types, since, until, min_severity, max_severity, source, event_id)
        direction = "DESC" if newest_first else "ASC"
        # ts_ms first (its index gives the order); events in the same millisecond by their microseconds
        # (ts_us: NULL in a version-1 store, which has no such column), then by id, so the order is stable.
        finer = f", ts_us {direction}" if self._exact else ""
        sql = ("SELECT id, type, timestamp, severity, source_name, body FROM events" + where
               + f" ORDER BY ts_ms {direction}{finer}, id")
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        for row in self._db.execute(sql, args):
            yield StoredEvent(row[0], row[1], row[2], row[3], row[4], jsonio.loads(row[5]))

    def count(self, **filters: Any) -> int:
        where, args = self._filters(filters.get("types", ()), filters.get("since"), filters.get("until"),
                                    filters.get("min_severity"), filters.get("max_severity"),
                                    filters.get("source"), filters.get("event_id"))
        return self._db.execute("SELECT count(*) FROM events" + where, args).fetchone()[0]

    def counts_by(self, column: str) -> dict[str, int]:
        if column not in ("type", "source_name"):
            raise ValueError(column)
        return dict(self._db.execute(f"SELECT {column}, count(*) FROM events GROUP BY {column} ORDER BY 2 DESC"))

    def _filters(self, types: Sequence[str], since: str | None, until: str | None, min_severity: float | None,
                 max_severity: float | None, source: str | None, event_id: str | None) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        if types:
            clauses.append(f"type IN ({','.join('?' * len(types))})")
            args += list(types)
        # ts_ms (indexed) is a float product of the instant, truncated: two instants in one millisecond, or 1969's
        # within a millisecond of each other, share it. It narrows the rows; ts_us then compares the instants
        # exactly. A row without ts_us (a version-1 store, a row 0.1.0 wrote) is compared by ts_ms alone.
        if since:
            if self._exact:
                clauses.append("ts_ms >= ? AND (ts_us >= ? OR ts_us IS NULL)")
                args += [epoch_ms(since), epoch_us(since)]
            else:
                clauses.append("ts_ms >= ?")
                args.append(epoch_ms(since))
        if until:
            if self._exact:
                clauses.append("ts_ms <= ? AND (ts_us < ? OR (ts_us IS NULL AND ts_ms < ?))")
                args += [epoch_ms(until), epoch_us(until), epoch_ms(until)]
            else:
                clauses.append("ts_ms < ?")
                args.append(epoch_ms(until))
        if min_severity is not None:
            clauses.append("severity >= ?")
            args.append(min_severity)
        if max_severity is not None:
            clauses.append("severity <= ?")
            args.append(max_severity)
        if source:
            clauses.append("source_name = ?")
            args.append(source)
        if event_id:
            clauses.append("id = ?")
            args.append(event_id)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args

    def close(self) -> None:
        self._db.close()


class SqliteSink(BaseSink):
    """Sink over the embedded store: one event per id, a newer version replacing an older one; a re-send
    or an older version is reported as a duplicate, not stored."""

    def __init__(self, path: str) -> None:
        self.store = EventStore(path)
        self.name = f"sqlite:{path}"

    @classmethod
    def from_url(cls, url: str, **options: Any) -> "SqliteSink":
        if options:
            raise ConfigError("the sqlite destination takes no options", key=sorted(options)[0])
        return cls(path_from_url(url))

    def send(self, events: Sequence[dict[str, Any]]) -> DeliveryReport:
        return self.send_with_bodies(events, None)

    def send_with_bodies(self, events: Sequence[dict[str, Any]], bodies: Sequence[str | None] | None) -> DeliveryReport:
        """send(), reusing the JSON text each event arrived as where the pipeline still has it."""
        try:
            inserted, duplicates, rejected = self.store.insert(events, bodies)
        except sqlite3.Error as exc:        # disk full, database locked past the timeout, I/O error
            # The transaction was rolled back: none of the batch is stored; it may be sent again.
            reason = f"cannot store in {self.store.path}: {type(exc).__name__}: {exc}"
            return DeliveryReport(self.name, failed=[Rejected(reason, event=e, sink=self.name, retryable=True)
                                                     for e in events])
        return DeliveryReport(self.name, inserted, duplicates, rejected)

    def send_telling_stored(self, events: Sequence[dict[str, Any]]) -> tuple[DeliveryReport, list[dict[str, Any]]]:
        """send(), and which events were stored (new ids and newer versions, in order): the rest of the delivered
        ones are duplicates (a re-send, an older version, a repeat within the batch)."""
        try:
            stored, rejected = self.store.insert_each(events)
        except sqlite3.Error as exc:
            reason = f"cannot store in {self.store.path}: {type(exc).__name__}: {exc}"
            return DeliveryReport(self.name, failed=[Rejected(reason, event=e, sink=self.name, retryable=True)
                                                     for e in events]), []
        return DeliveryReport(self.name, len(stored), len(events) - len(stored) - len(rejected), rejected), stored

    def close(self) -> None:
        self.store.close()
