"""Enrichment cache: one lookup per indicator per TTL, in memory or in a small SQLite file shared across runs.

Hits and misses ("not found") are both cached, misses for a shorter TTL since an unknown indicator
may appear later. Keys are (provider, kind, value); values are JSON. Thread-safe.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from typing import Any, Callable

DEFAULT_TTL = 24 * 3600.0          # a found indicator's verdict is reused for a day
DEFAULT_NEGATIVE_TTL = 3600.0      # "not found" is re-asked after an hour

_DDL = """CREATE TABLE IF NOT EXISTS enrichment (
    provider TEXT NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL,
    stored_at REAL NOT NULL, found INTEGER NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (provider, kind, value))"""


class EnrichmentCache:
    """`get` returns the cached result dict (with "found") or None when absent/expired; `put` stores one."""

    def __init__(self, path: str | None = None, *, ttl: float = DEFAULT_TTL, negative_ttl: float = DEFAULT_NEGATIVE_TTL,
                 clock: Callable[[], float] = time.time) -> None:
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._memory: dict[tuple[str, str, str], tuple[float, bool, dict[str, Any]]] = {}
        self._db = None
        if path:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_DDL)
        self.hits = 0
        self.misses = 0

    def _fresh(self, stored_at: float, found: bool) -> bool:
        return self._clock() - stored_at < (self.ttl if found else self.negative_ttl)

    def get(self, provider: str, kind: str, value: str) -> dict[str, Any] | None:
        key = (provider, kind, value)
        with self._lock:
            row = self._memory.get(key)
            if row is None and self._db is not None:
                found_row = self._db.execute(
                    "SELECT stored_at, found, body FROM enrichment WHERE provider=? AND kind=? AND value=?", key).fetchone()
                if found_row:
                    row = (found_row[0], bool(found_row[1]), json.loads(found_row[2]))
                    self._memory[key] = row
            if row is not None and self._fresh(row[0], row[1]):
                self.hits += 1
                return dict(row[2])
            self.misses += 1
            return None

    def put(self, provider: str, kind: str, value: str, result: dict[str, Any]) -> None:
        found = bool(result.get("found"))
        now = self._clock()
        with self._lock:
            self._memory[(provider, kind, value)] = (now, found, dict(result))
            if self._db is not None:
                self._db.execute("INSERT OR REPLACE INTO enrichment VALUES (?, ?, ?, ?, ?, ?)",
                                 (provider, kind, value, now, int(found), json.dumps(result, sort_keys=True)))

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
