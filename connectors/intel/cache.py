"""Enrichment cache: one lookup per indicator per TTL, in memory or in a small SQLite file shared across runs.

Hits and misses ("not found") are both cached, misses for a shorter TTL since an unknown indicator
may appear later. Keys are (provider, kind, value); values are JSON. Thread-safe.

The file is only a cache, so damage never stops enrichment: a file that is not a SQLite database is
moved aside to `<path>.corrupt` (and a fresh one started), a row that does not read back (bad JSON,
not an object, a stored_at that is not a number) is deleted and counts as a miss, and a database
that fails later (a malformed disk image) is left alone while the run goes on in memory. Each is
logged as a warning naming the file, and counted in `damaged`. A file that cannot be opened now but
is not damaged (locked by another process, read-only) is left as it is, with a warning, and the run
goes on in memory (`unavailable`).

"Not found" is never kept longer than a found verdict: `negative_ttl` is capped at `ttl`. Memory holds at most
MEMORY_ENTRIES verdicts (least recently used given up first); the file, when there is one, holds them all.
"""
from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from typing import Any, Callable

from wia_security.errors import ConfigError

from ..dead_letter import create_private

log = logging.getLogger(__name__)

DEFAULT_TTL = 24 * 3600.0          # a found indicator's verdict is reused for a day
DEFAULT_NEGATIVE_TTL = 3600.0      # "not found" is re-asked after an hour
#: Verdicts kept in memory (about 800 bytes each). Every verdict was kept for the whole run, expired ones too:
#: a long-running `forward --enrich` grew by 80 MB per 100,000 indicators looked up, without end.
MEMORY_ENTRIES = 10_000
#: Rows older than this (or than the TTL, if longer) are deleted when a cache file is opened.
RETENTION = 30 * 24 * 3600.0
CLOCK_SLACK = 300.0                # seconds a stored_at may lie ahead of this clock and still count as fresh

_DDL = """CREATE TABLE IF NOT EXISTS enrichment (
    provider TEXT NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL,
    stored_at REAL NOT NULL, found INTEGER NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (provider, kind, value))"""


class EnrichmentCache:
    """`get` returns the cached result dict (with "found") or None when absent/expired; `put` stores one."""

    def __init__(self, path: str | None = None, *, ttl: float = DEFAULT_TTL, negative_ttl: float = DEFAULT_NEGATIVE_TTL,
                 clock: Callable[[], float] = time.time) -> None:
        self.ttl = ttl
        # --ttl 0 (or 600) asks for fresh verdicts: a "not found" kept an hour would outlive every found one
        self.negative_ttl = min(negative_ttl, ttl)
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()
        # Most recently used last; at most MEMORY_ENTRIES (read when the cache is made), the file keeps the rest.
        self._memory: OrderedDict[tuple[str, str, str], tuple[float, bool, dict[str, Any]]] = OrderedDict()
        self.memory_entries = max(1, int(MEMORY_ENTRIES))
        self._db: sqlite3.Connection | None = None
        self.hits = 0
        self.misses = 0
        self.damaged = 0                # unreadable rows dropped, or files set aside
        self.unavailable = False        # the file could not be opened (locked, read-only): memory only
        if path:
            try:
                self._db = _open(path)
            except sqlite3.DatabaseError as exc:
                if not _is_damage(exc):
                    # Locked by another process (a run holding it exclusively, a backup), read-only, an I/O
                    # error: the file may be sound and in use. Moving it aside took another run's live cache
                    # and WAL away as ".corrupt".
                    log.warning("enrichment cache %s cannot be used now (%s): left as it is, going on in memory "
                                "for this run", path, exc)
                    self.unavailable = True
                    return
                aside = path + ".corrupt"
                for suffix in ("", "-wal", "-shm"):      # its WAL must not be replayed into the new file
                    if os.path.exists(path + suffix):
                        os.replace(path + suffix, aside + suffix)
                log.warning("enrichment cache %s is not a usable SQLite database (%s): moved to %s, starting empty",
                            path, exc, aside)
                self.damaged += 1
                self._db = _open(path)
            self._purge()

    def _purge(self) -> None:
        """Delete rows older than RETENTION (or the TTL, if longer), and rows stored in the future: no run reads
        them again, yet they stayed for ever, so the file grew with every indicator ever looked up and kept a
        list of them (the hosts, URLs and files seen) with no end. RETENTION outlives any other run's TTL
        that is not longer than it."""
        horizon = max(self.ttl, RETENTION)
        now = self._clock()
        try:
            # numeric stored_at only: a row with any other is damage, dropped and counted when read
            self._db.execute("DELETE FROM enrichment WHERE typeof(stored_at) IN ('integer', 'real') "  # type: ignore[union-attr]
                             "AND (stored_at < ? OR stored_at > ?)", (now - horizon, now + CLOCK_SLACK))
        except sqlite3.OperationalError as exc:    # locked by another run now: the next run purges
            log.info("enrichment cache %s: old entries not purged this time (%s)", self.path, exc)
        except sqlite3.DatabaseError as exc:
            self._disk_failed(exc)

    def _fresh(self, stored_at: float, found: bool) -> bool:
        # A verdict stored in the future (written while this clock, or another machine's sharing the file,
        # was ahead; the clock since stepped back) is stale: it was kept for as long as the clock was off
        # plus the TTL, a year ahead served a year-old verdict for a year.
        age = self._clock() - stored_at
        return -CLOCK_SLACK <= age < (self.ttl if found else self.negative_ttl)

    def _disk_failed(self, exc: sqlite3.DatabaseError) -> None:
        log.warning("enrichment cache %s failed (%s): going on in memory for this run", self.path, exc)
        self.damaged += 1
        try:
            self._db.close()            # type: ignore[union-attr]
        except sqlite3.Error:
            pass
        self._db = None

    def _read_row(self, key: tuple[str, str, str]) -> tuple[float, bool, dict[str, Any]] | None:
        try:
            found_row = self._db.execute(     # type: ignore[union-attr]
                "SELECT stored_at, found, body FROM enrichment WHERE provider=? AND kind=? AND value=?", key).fetchone()
        except sqlite3.DatabaseError as exc:
            self._disk_failed(exc)
            return None
        if not found_row:
            return None
        stored_at, found, body = found_row
        try:
            result = json.loads(body)
            if not isinstance(result, dict) or isinstance(stored_at, bool) or not isinstance(stored_at, (int, float)):
                raise ValueError("not a result object with a numeric stored_at")
        except (TypeError, ValueError) as exc:
            log.warning("enrichment cache %s: unreadable entry for %s %s %r (%s): dropped, looking it up again",
                        self.path, *key, exc)
            self.damaged += 1
            try:
                self._db.execute("DELETE FROM enrichment WHERE provider=? AND kind=? AND value=?", key)  # type: ignore[union-attr]
            except sqlite3.DatabaseError as db_exc:
                self._disk_failed(db_exc)
            return None
        return float(stored_at), bool(found), result

    def get(self, provider: str, kind: str, value: str) -> dict[str, Any] | None:
        key = (provider, kind, value)
        with self._lock:
            row = self._memory.pop(key, None)
            if row is not None and not self._fresh(row[0], row[1]):
                row = None        # expired here: the file may hold a fresher one another run wrote since
            if row is None and self._db is not None:
                row = self._read_row(key)
            if row is not None and self._fresh(row[0], row[1]):
                self._remember(key, row)
                self.hits += 1
                return dict(row[2])
            self.misses += 1
            return None

    def _remember(self, key: tuple[str, str, str], row: tuple[float, bool, dict[str, Any]]) -> None:
        self._memory[key] = row
        self._memory.move_to_end(key)
        while len(self._memory) > self.memory_entries:
            self._memory.popitem(last=False)

    def put(self, provider: str, kind: str, value: str, result: dict[str, Any]) -> None:
        found = bool(result.get("found"))
        now = self._clock()
        with self._lock:
            self._remember((provider, kind, value), (now, found, dict(result)))
            if self._db is not None:
                try:
                    self._db.execute("INSERT OR REPLACE INTO enrichment VALUES (?, ?, ?, ?, ?, ?)",
                                     (provider, kind, value, now, int(found), json.dumps(result, sort_keys=True)))
                except sqlite3.DatabaseError as exc:
                    self._disk_failed(exc)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def _is_damage(exc: sqlite3.DatabaseError) -> bool:
    """The file is not a database or is corrupt (SQLITE_NOTADB, SQLITE_CORRUPT), as opposed to one that
    cannot be used now (SQLITE_BUSY, SQLITE_LOCKED, SQLITE_READONLY, SQLITE_IOERR, SQLITE_CANTOPEN...)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT)
    return not isinstance(exc, sqlite3.OperationalError)


def _open(path: str) -> sqlite3.Connection:
    # The cache lists every indicator looked up (the hosts, URLs and files seen): 0600 when new, whatever
    # the umask; SQLite gives its -wal and -shm files the database's mode. An existing file keeps its own.
    if path != ":memory:":
        # A path that cannot hold a file is the caller's mistake, not a damaged cache: one error naming it.
        # sqlite3 says only "unable to open database file", which read as damage: the file was "moved
        # aside" (a directory too) and the same error came again.
        if os.path.isdir(path):
            raise ConfigError(f"enrichment cache {path}: is a directory (give a file path)")
        try:
            create_private(path)
        except FileNotFoundError:
            raise ConfigError(f"enrichment cache {path}: the folder {os.path.dirname(os.path.abspath(path))} "
                              "does not exist") from None
        except OSError as exc:
            raise ConfigError(f"enrichment cache {path}: cannot create it ({exc.strerror or exc})") from None
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(_DDL)
        db.execute("SELECT count(*) FROM enrichment").fetchone()
    except sqlite3.DatabaseError:
        db.close()
        raise
    return db
