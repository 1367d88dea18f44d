"""What a store must look like after the process writing it was SIGKILLed (shared by the crash tests)."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path


def stored_ids(db_path: Path) -> set[str]:
    """Event ids in the SQLite store, after checking it opens whole: integrity_check ok, every row's
    body parses and carries its own id (no half-written row). Empty before the store made its table."""
    if not db_path.exists():
        return set()
    db = sqlite3.connect(db_path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'events'").fetchone():
            return set()                     # killed (or looked at) before the store made its table
        rows = db.execute("SELECT id, body FROM events").fetchall()
    finally:
        db.close()
    assert all(json.loads(body)["id"] == event_id for event_id, body in rows)
    return {event_id for event_id, _ in rows}
