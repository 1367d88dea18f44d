"""Dead-letter outputs beyond the NDJSON file: a SQLite table, or any sink; `open_dead_letter(spec)` picks one.

Every dead letter has `put(rejected)`, `flush()`, `close()` and a `count`. The record is the one
`connectors.dead_letter.dead_letter_record` builds: reason, errors, where, sink (the destination),
failed_at, and the event (or its raw bytes).

- `path` or `file:///path` -> `DeadLetterFile` (NDJSON, one record a line)
- `sqlite:///path.db` -> `SqliteDeadLetter` (table `dead_letters`, one row a record)
- `sink+<any destination URL>` (e.g. `sink+sqlite:///events.db`, `sink+kafka://…`), or any other
  destination URL -> `SinkDeadLetter`: the undeliverable *event* goes to that sink with the record
  (minus the event) under `meta.custom.dead_letter`, so it stays a valid WIA event; records without
  a parsed event (unparseable input) go to a fallback file, because a sink only takes events.
"""
from __future__ import annotations

import copy
import sqlite3
import threading
from typing import Any, Protocol

from wia_security import jsonio
from wia_security.errors import OutputError
from wia_security.timeutil import now_iso

from ..base import Rejected
from ..dead_letter import DeadLetterFile, as_dead_letter_record, create_private, dead_letter_record


class DeadLetter(Protocol):
    count: int

    def put(self, rejected: Rejected) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


_DDL = """
CREATE TABLE IF NOT EXISTS dead_letters (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    failed_at  TEXT NOT NULL,
    sink       TEXT,
    reason     TEXT NOT NULL,
    retryable  INTEGER NOT NULL DEFAULT 0,
    event_id   TEXT,
    record     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_sink ON dead_letters (sink, failed_at);
"""


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class SqliteDeadLetter:
    """Rejected events as rows of `dead_letters` in a SQLite file; `record` holds the full JSON record."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.count = 0
        self._lock = threading.Lock()
        try:
            if path != ":memory:" and not path.startswith("file:"):
                create_private(path)             # SQLite gives its -wal and -shm files the database's mode
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")   # a put is in the fsynced WAL when it returns
            self._db.executescript(_DDL)
        except OSError as exc:
            raise OutputError(f"the dead-letter store {path}", exc.strerror or str(exc)) from None
        except sqlite3.Error as exc:
            raise OutputError(f"the dead-letter store {path}", str(exc)) from None

    def put(self, rejected: Rejected) -> None:
        self.put_record(dead_letter_record(rejected), retryable=rejected.retryable)

    def put_record(self, record: dict[str, Any], *, retryable: bool = False) -> None:
        """Store a record as it is (`wia-security replay` carries records it cannot replay unchanged)."""
        event = record.get("event")
        event_id = event.get("id") if isinstance(event, dict) and isinstance(event.get("id"), str) else None
        # the columns take text only (a carried record may be hand-made); the record column keeps it whole
        row = (_text(record.get("failed_at")) or now_iso(), _text(record.get("sink")), _text(record.get("reason")) or "",
               int(retryable), event_id, _dumps(record))
        with self._lock:
            try:
                self._db.execute("INSERT INTO dead_letters (failed_at, sink, reason, retryable, event_id, record) "
                                 "VALUES (?, ?, ?, ?, ?, ?)", row)
            except sqlite3.Error as exc:
                raise OutputError(f"the dead-letter store {self.path}", str(exc)) from None
            self.count += 1

    def records(self) -> list[dict[str, Any]]:
        with self._lock:
            return [jsonio.loads(r[0]) for r in self._db.execute("SELECT record FROM dead_letters ORDER BY seq")]

    def flush(self) -> None:
        pass                                     # autocommit: each put is durable when it returns

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "SqliteDeadLetter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SinkDeadLetter:
    """Undeliverable events re-sent to another sink, annotated with why under meta.custom.dead_letter.
    The event dict handed to the sink is a copy: other destinations keep the original."""

    def __init__(self, sink: Any, fallback: DeadLetterFile) -> None:
        self.sink = sink
        self.fallback = fallback
        self.count = 0
        self._lock = threading.Lock()

    def put(self, rejected: Rejected) -> None:
        with self._lock:
            self.count += 1
            if not isinstance(rejected.event, dict):
                self.fallback.put(rejected)
                return
            record = dead_letter_record(rejected)
            record.pop("event", None)
            event = copy.deepcopy(rejected.event)
            added = None if "meta" in event else "meta"
            meta = event.setdefault("meta", {})
            if not isinstance(meta, dict):
                self.fallback.put(rejected)
                return
            added = added or (None if "custom" in meta else "custom")
            custom = meta.setdefault("custom", {})
            if not isinstance(custom, dict):
                self.fallback.put(rejected)
                return
            if added:
                record["added"] = added          # made here: `replay` removes it to give the event back as it was
            custom["dead_letter"] = record
            try:
                report = self.sink.send([event])
            except Exception as exc:  # noqa: BLE001 - the dead-letter sink broke: the file keeps the record
                self._to_fallback(event, f"{type(exc).__name__}: {exc}")
                return
            self._fallback_failed(report)

    def _fallback_failed(self, report: Any) -> None:
        """The events the dead-letter sink refused go to the fallback file. A batching sink reports an event
        in a later send()'s or flush()'s report than the put() that gave it, so each record is rebuilt from
        the annotation its own event carries, not from the rejection at hand."""
        for failed in report.failed:
            self._to_fallback(failed.event, failed.reason)

    def _to_fallback(self, sent: Any, why: str) -> None:
        record = as_dead_letter_record(sent)
        if record is None:                   # not an event this dead letter annotated: keep what the sink said
            self.fallback.put(Rejected(f"dead-letter sink failed: {why}", event=sent))
            return
        record["reason"] = f"{record['reason']}; dead-letter sink also failed: {why}"
        self.fallback.put_record(record)

    def put_record(self, record: dict[str, Any]) -> None:
        """A record without an event (`wia-security replay` carries those unchanged): to the fallback file."""
        with self._lock:
            self.count += 1
            self.fallback.put_record(record)

    def flush(self) -> None:
        with self._lock:
            self._fallback_failed(self.sink.flush())
        self.fallback.flush()

    def close(self) -> None:
        self.flush()
        self.sink.close()
        self.fallback.close()

    def __enter__(self) -> "SinkDeadLetter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_dead_letter(spec: str, *, fallback_path: str = "wia-dead-letter.ndjson") -> DeadLetter:
    """The dead letter for a path or URL (see the module docstring)."""
    if "://" not in spec:
        return DeadLetterFile(spec)
    if spec.lower().startswith("sink+"):
        from .. import open_sink
        from .sqlite_url import check_sqlite_url
        check_sqlite_url(spec[5:])          # the sqlite destination would ignore a query string
        return SinkDeadLetter(open_sink(spec[5:]), DeadLetterFile(fallback_path))
    scheme = spec.split("://", 1)[0].lower()
    if scheme == "file":
        from urllib.parse import unquote, urlsplit
        return DeadLetterFile(unquote(urlsplit(spec).path))
    if scheme == "sqlite":
        from .sqlite_url import sqlite_path
        return SqliteDeadLetter(sqlite_path(spec))
    from .. import open_sink
    return SinkDeadLetter(open_sink(spec), DeadLetterFile(fallback_path))


def _dumps(record: dict[str, Any]) -> str:
    try:
        return jsonio.dumps(record)
    except (TypeError, ValueError):
        import json
        return json.dumps(record, default=repr, ensure_ascii=True)
