"""The embedded event store: WIA events in one SQLite file, indexed by time, type and severity.

`sqlite:///wia-events.db` (relative path) or `sqlite:////var/lib/wia/events.db` (absolute).
Writes are idempotent on the event id: storing an event whose id is already present changes
nothing and is counted as a duplicate. Standard library only.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterator, Sequence
from urllib.parse import unquote, urlsplit

from wia_security import jsonio
from wia_security.errors import ConfigError
from wia_security.timeutil import parse_iso

from .base import BaseSink, DeliveryReport, Rejected
from .dead_letter import create_private

DEFAULT_URL = "sqlite:///wia-events.db"
SCHEMA_VERSION = 1

_DDL = """
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
"""
_INSERT = ("INSERT INTO events (id, type, ts_ms, timestamp, severity, source_name, body) "
           "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING")


def path_from_url(url: str) -> str:
    """sqlite:///rel.db -> rel.db, sqlite:////abs.db -> /abs.db; a bare path is taken as is."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    if parts.scheme != "sqlite" or parts.netloc:
        raise ConfigError("expected sqlite:///relative.db or sqlite:////absolute.db", key="url", source=url)
    path = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
    if not path:
        raise ConfigError("no database path", key="url", source=url)
    return path


def epoch_ms(timestamp: str) -> int:
    try:
        moment = datetime.fromisoformat(timestamp)     # fast C path for the common spellings
        if moment.tzinfo is None:
            raise ValueError
    except ValueError:
        moment = parse_iso(timestamp)                  # any RFC 3339 spelling
    return int(moment.timestamp() * 1000)


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

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            if path != ":memory:" and not path.startswith("file:"):
                # Whole events (user names, command lines) are not for every local user: a new store is
                # 0600 whatever the umask, and SQLite gives its -wal and -shm files the database's mode.
                create_private(path)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: each committed batch is in the fsynced WAL before send() reports it delivered, so a
            # power cut cannot take back events a source has since committed its offset past. (NORMAL
            # survives a killed process but may lose the last commits on power loss.)
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_DDL)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except OSError as exc:              # a missing folder, a folder we may not write in
            raise ConfigError(f"cannot open the SQLite store: {exc.strerror or exc}{_hint(path)}", source=path) from None
        except sqlite3.Error as exc:        # a directory, a missing folder, not a database, read-only...
            raise ConfigError(f"cannot open the SQLite store: {exc}{_hint(path)}", source=path) from None

    def insert(self, events: Sequence[dict[str, Any]],
               bodies: Sequence[str | None] | None = None) -> tuple[int, int, list[Rejected]]:
        """Store events in one transaction -> (inserted, duplicates, rejected).

        `bodies[i]`, when given and not None, is the JSON text of `events[i]` as received (the
        pipeline passes the input line of an event it did not change): stored as is, not re-serialized."""
        rows = []
        rejected: list[Rejected] = []
        dumps = jsonio.dumps
        for i, e in enumerate(events):
            try:
                body = (bodies[i] if bodies is not None else None) or dumps(e)
                source = e.get("source")
                rows.append((e["id"], e["type"], epoch_ms(e["timestamp"]), e["timestamp"], e["severity"],
                             source.get("name") if isinstance(source, dict) else None, body))
            except KeyError as exc:         # a library caller that did not validate first (the CLI does)
                rejected.append(Rejected(f"cannot store event: it has no {exc.args[0]!r} (the store indexes id, type, "
                                         "timestamp and severity: validate events before sending them)",
                                         event=e, sink="sqlite"))
            except (TypeError, ValueError, OverflowError) as exc:
                rejected.append(Rejected(f"cannot store event: {type(exc).__name__}: {exc}", event=e, sink="sqlite"))
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

    def query(self, *, types: Sequence[str] = (), since: str | None = None, until: str | None = None,
              min_severity: float | None = None, max_severity: float | None = None, source: str | None = None,
              event_id: str | None = None, limit: int | None = 100, newest_first: bool = True) -> Iterator[StoredEvent]:
        where, args = self._filters(types, since, until, min_severity, max_severity, source, event_id)
        sql = ("SELECT id, type, timestamp, severity, source_name, body FROM events" + where
               + f" ORDER BY ts_ms {'DESC' if newest_first else 'ASC'}, id")
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

    @staticmethod
    def _filters(types: Sequence[str], since: str | None, until: str | None, min_severity: float | None,
                 max_severity: float | None, source: str | None, event_id: str | None) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        if types:
            clauses.append(f"type IN ({','.join('?' * len(types))})")
            args += list(types)
        if since:
            clauses.append("ts_ms >= ?")
            args.append(epoch_ms(since))
        if until:
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
    """Sink over the embedded store; duplicates (same event id) are reported, not stored twice."""

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

    def close(self) -> None:
        self.store.close()
